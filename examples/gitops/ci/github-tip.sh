#!/usr/bin/env bash
# github-tip.sh: exit 0 when this commit (GITHUB_SHA) is the current tip of its branch (GITHUB_REF_NAME,
# the default branch the apply workflow runs on), 1 when the branch has moved on, 2 when GitHub could not
# be asked. apply.sh asks before applying and before planning again. Needs gh with GH_TOKEN (contents: read).
set -uo pipefail
here=$(dirname "$0")

repo=${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is not set}
sha=${GITHUB_SHA:?GITHUB_SHA is not set}
branch=${GITHUB_REF_NAME:?GITHUB_REF_NAME is not set}
answer=$(gh api "repos/$repo/branches/$branch") || exit 2
tip=$(python3 "$here/github_json.py" branch-tip <<<"$answer") || exit 2
if [ "$tip" != "$sha" ]; then
  echo "github-tip.sh: $branch is at $tip now, no longer at $sha" >&2
  exit 1
fi
