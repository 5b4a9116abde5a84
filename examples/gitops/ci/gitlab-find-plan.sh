#!/usr/bin/env bash
# gitlab-find-plan.sh: on a push to the default branch, downloads the saved plan reviewed in the merge
# request whose merge made this commit (CI_COMMIT_SHA) into WORK/reviewed/plans.json, or refuses (exit 1).
# The plan is the artifact reconciler-ci/plans.json of the job RECONCILER_PLAN_JOB (default plan) in that
# merge request's pipelines at its head commit, newest first: another merge request's plan, or one of an
# older push, is never taken. The plan is untrusted all the same: apply only compares it with a fresh
# plan (docs/safety.md, "Saved plans"). Needs GITLAB_API_TOKEN with read_api.
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"
. "$here/gitlab-api.sh"

project=${CI_PROJECT_ID:?CI_PROJECT_ID is not set}
sha=${CI_COMMIT_SHA:?CI_COMMIT_SHA is not set}
job_name=${RECONCILER_PLAN_JOB:-plan}
dest="$(work_dir)/reviewed"
rm -rf "$dest"
mkdir -p "$dest"

mrs=$(gitlab_pages "projects/$project/repository/commits/$sha/merge_requests")
read -r iid head < <(python3 "$here/gitlab_json.py" merged-mr "$sha" <<<"$mrs") || exit 1
pipelines=$(gitlab_pages "projects/$project/merge_requests/$iid/pipelines")
for pipeline in $(python3 "$here/gitlab_json.py" plan-pipelines "$head" <<<"$pipelines"); do
  jobs=$(gitlab_pages "projects/$project/pipelines/$pipeline/jobs?include_retried=true")
  job=$(python3 "$here/gitlab_json.py" plan-job "$job_name" <<<"$jobs")
  [ -n "$job" ] || continue
  if gitlab_get "projects/$project/jobs/$job/artifacts/reconciler-ci/plans.json" >"$dest/plans.json" &&
    [ -s "$dest/plans.json" ]; then
    echo "gitlab-find-plan.sh: the plan reviewed in merge request !$iid at $head (job $job)" >&2
    exit 0
  fi
done
rm -f "$dest/plans.json"
fail "no saved plan: merge request !$iid was merged without a finished $job_name job of its last commit; nothing is applied (run its pipeline, review the plan, and retry this job)"
