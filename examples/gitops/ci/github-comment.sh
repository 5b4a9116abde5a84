#!/usr/bin/env bash
# github-comment.sh PR FILE: posts FILE as the pull request's one reconciler comment, or updates that
# comment in place: the comment RECONCILER_COMMENT_AUTHOR (default github-actions[bot], the author of
# comments made with GITHUB_TOKEN) wrote starting with the marker. An empty FILE is refused: a failed plan
# posts its error text (plan.sh), never a blank comment. A FILE over GitHub's limit keeps its verdict, its
# risky changes and refusals as far as they fit, and says where the full plan is (this run's artifacts).
# Needs gh with GH_TOKEN (pull-requests: write).
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"

[ $# -eq 2 ] || fail "usage: github-comment.sh PR FILE"
pr=$1
file=$2
repo=${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is not set}
marker='<!-- reconciler-plan -->'
author=${RECONCILER_COMMENT_AUTHOR:-github-actions[bot]}
[ -f "$file" ] || fail "$file does not exist: there is nothing to post"
payload="$(work_dir)/comment.json"
run_url="${GITHUB_SERVER_URL:-https://github.com}/$repo/actions/runs/${GITHUB_RUN_ID:-}"
where="the saved plan (plans.json) in the artifacts of $run_url, and \`reconciler plan --format text\` on this branch"
python3 "$here/github_json.py" comment-body "$marker" "$file" "$where" >"$payload"

comments=$(gh api --paginate "repos/$repo/issues/$pr/comments?per_page=100")
id=$(python3 "$here/github_json.py" comment-id "$marker" "$author" <<<"$comments")
if [ -n "$id" ]; then
  exec gh api --method PATCH "repos/$repo/issues/comments/$id" --input "$payload" --silent
fi
exec gh api --method POST "repos/$repo/issues/$pr/comments" --input "$payload" --silent
