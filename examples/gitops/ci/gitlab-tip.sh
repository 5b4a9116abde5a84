#!/usr/bin/env bash
# gitlab-tip.sh: exit 0 when this commit (CI_COMMIT_SHA) is the current tip of the default branch
# (CI_DEFAULT_BRANCH), 1 when the branch has moved on, 2 when GitLab could not be asked. apply.sh asks
# before applying and before planning again. Needs GITLAB_API_TOKEN with read_api.
set -uo pipefail
here=$(dirname "$0")
if [ -z "${GITLAB_API_TOKEN:-}" ]; then
  echo "gitlab-tip.sh: GITLAB_API_TOKEN is not set: cannot ask GitLab for the branch's tip" >&2
  exit 2
fi
. "$here/gitlab-api.sh"

sha=${CI_COMMIT_SHA:?CI_COMMIT_SHA is not set}
branch=${CI_DEFAULT_BRANCH:?CI_DEFAULT_BRANCH is not set}
encoded=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$branch")
answer=$(gitlab_get "projects/${CI_PROJECT_ID:?}/repository/branches/$encoded") || exit 2
tip=$(python3 "$here/gitlab_json.py" branch-tip <<<"$answer") || exit 2
if [ "$tip" != "$sha" ]; then
  echo "gitlab-tip.sh: $branch is at $tip now, no longer at $sha" >&2
  exit 1
fi
