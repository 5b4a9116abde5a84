#!/usr/bin/env bash
# github-find-plan.sh: on a push to main, downloads the saved plan reviewed in the pull request whose merge
# made this commit (GITHUB_SHA) into WORK/reviewed/plans.json, or refuses (exit 1). The pull request is
# the one GitHub merged as this commit; its plan is the artifact reconciler-plan-NUMBER-HEAD_SHA of a
# finished pull_request run of the plan workflow (RECONCILER_PLAN_WORKFLOW, default
# reconciler-plan.yml) at that pull request's head commit, from a branch of this repository and of that
# pull request (its number, or its branch once GitHub no longer lists it), the newest such run first.
# Another pull request's plan, a fork's run at the same commit, or a plan of an older push to this pull
# request is never taken. The plan is untrusted all the
# same: apply only compares it with a fresh plan of main (docs/safety.md, "Saved plans").
# Needs gh with GH_TOKEN (contents, pull-requests and actions: read). Outputs: plan-file, pull-request.
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"

repo=${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is not set}
sha=${GITHUB_SHA:?GITHUB_SHA is not set}
workflow=${RECONCILER_PLAN_WORKFLOW:-reconciler-plan.yml}
dest="$(work_dir)/reviewed"
rm -rf "$dest"
mkdir -p "$dest"

pulls=$(gh api "repos/$repo/commits/$sha/pulls")
read -r pr head ref < <(python3 "$here/github_json.py" merged-pull "$sha" <<<"$pulls") || exit 1
artifact="reconciler-plan-$pr-$head"
runs=$(gh api "repos/$repo/actions/workflows/$workflow/runs?event=pull_request&head_sha=$head&per_page=100")
for run in $(python3 "$here/github_json.py" plan-runs "$head" "$repo" "$pr" "$ref" <<<"$runs"); do
  if gh run download "$run" --repo "$repo" --name "$artifact" --dir "$dest" && [ -s "$dest/plans.json" ]; then
    echo "github-find-plan.sh: the plan reviewed in pull request #$pr at $head (run $run)" >&2
    output plan-file "$dest/plans.json"
    output pull-request "$pr"
    exit 0
  fi
done
fail "no saved plan $artifact: pull request #$pr was merged without a finished plan of its last commit; nothing is applied (re-run its plan workflow, review it, and re-run this job)"
