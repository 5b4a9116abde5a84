#!/usr/bin/env bash
# gitlab-retried.sh: exit 0 when this job (CI_JOB_NAME, CI_JOB_ID) is a retry (an earlier job of that name
# ran in this pipeline), 1 when it is the first, 2 when GitLab could not be asked. apply.sh passes
# --resume after a retry. Needs GITLAB_API_TOKEN with read_api.
set -uo pipefail
here=$(dirname "$0")
. "$here/lib.sh"
if [ -z "${GITLAB_API_TOKEN:-}" ]; then
  echo "gitlab-retried.sh: GITLAB_API_TOKEN is not set: cannot ask GitLab whether this job is a retry" >&2
  exit 2
fi
. "$here/gitlab-api.sh"

jobs=$(gitlab_pages "projects/${CI_PROJECT_ID:?}/pipelines/${CI_PIPELINE_ID:?}/jobs?include_retried=true") || exit 2
exec python3 "$here/gitlab_json.py" retried "${CI_JOB_NAME:?}" "${CI_JOB_ID:?}" <<<"$jobs"
