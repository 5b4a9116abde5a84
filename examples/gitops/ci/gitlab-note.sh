#!/usr/bin/env bash
# gitlab-note.sh FILE: posts FILE as the merge request's one reconciler note (CI_MERGE_REQUEST_IID), or
# updates that note in place: the note the token's own user wrote starting with the marker. An empty FILE
# is refused: a failed plan posts its error text (plan.sh), never a blank note. Needs GITLAB_API_TOKEN
# (api scope, a bot user that can comment).
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"
. "$here/gitlab-api.sh"

[ $# -eq 1 ] || fail "usage: gitlab-note.sh FILE"
file=$1
[ -s "$file" ] && grep -q '[^[:space:]]' "$file" || fail "$file is empty or missing: a blank note is never posted"
project=${CI_PROJECT_ID:?CI_PROJECT_ID is not set}
iid=${CI_MERGE_REQUEST_IID:?CI_MERGE_REQUEST_IID is not set: run on merge request pipelines}
marker='<!-- reconciler-plan -->'
body="$(work_dir)/note.md"
{ printf '%s\n' "$marker"; cat "$file"; } >"$body"

user=$(gitlab_get user | python3 "$here/gitlab_json.py" username)
notes=$(gitlab_pages "projects/$project/merge_requests/$iid/notes?sort=asc&order_by=created_at")
id=$(python3 "$here/gitlab_json.py" note-id "$marker" "$user" <<<"$notes")
if [ -n "$id" ]; then
  gitlab_send PUT "projects/$project/merge_requests/$iid/notes/$id" --data-urlencode "body@$body"
else
  gitlab_send POST "projects/$project/merge_requests/$iid/notes" --data-urlencode "body@$body"
fi
