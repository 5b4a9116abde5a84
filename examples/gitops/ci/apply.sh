#!/usr/bin/env bash
# apply.sh ROOT --plan FILE [ARGS...]: applies a reviewed saved plan as a CI job should:
# - `reconciler apply ROOT --auto-approve --format json --lock-timeout 300 --plan FILE ARGS...`: another
#   apply of the set holding the lock is waited for up to 5 minutes;
# - with --resume when this job is a re-run (GITHUB_RUN_ATTEMPT above 1, or a retried GitLab job), so a
#   cancelled apply's re-run finishes it (the fresh plan decides what runs, never the journal);
# - outcome plan_mismatch (the cloud or main changed since the review): plans again on this checkout into
#   WORK/replan/ for someone to approve, and exits RECONCILER_REPLANNED_EXIT (default 0) when that plan
#   was made; with RECONCILER_REPLAN=0 (the approved re-plan's own apply) it fails instead;
# - any other failure exits with the tool's code.
# Outputs: exit-code, outcome (the JSON report's), report-file, and after a re-plan plan-file (the new
# plan) and comment-file (its Markdown, for the approver).
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"

[ $# -ge 1 ] || fail "usage: apply.sh ROOT --plan FILE [ARGS...]"
root=$1
shift
plan=""
previous=""
for arg in "$@"; do
  [ "$previous" != --plan ] || plan=$arg
  previous=$arg
done
[ -n "$plan" ] || fail "apply.sh applies a reviewed saved plan only: pass --plan FILE"
[ -f "$plan" ] || fail "the saved plan $plan does not exist"
work=$(work_dir)

# 0: this job is a re-run of the apply, 1: its first run, 2: GitLab could not be asked.
rerun() {
  if [ "${GITHUB_RUN_ATTEMPT:-1}" -gt 1 ]; then
    return 0
  fi
  if [ "${GITLAB_CI:-}" = true ]; then
    "$here/gitlab-retried.sh"
    return
  fi
  return 1
}

resume=()
attempt=0
rerun || attempt=$?
case $attempt in
  0)
    echo "apply.sh: this job is a re-run: --resume finishes what an earlier attempt started" >&2
    resume=(--resume)
    ;;
  2) fail "cannot tell whether this job is a retry (GitLab's API did not answer); retry the job" ;;
esac

report="$work/report.json"
rm -f "$report"
run_tool "$report" - apply "$root" --auto-approve --format json --lock-timeout 300 "${resume[@]}" "$@"
outcome=$(json_field "$report" outcome)
output exit-code "$tool_status"
output outcome "$outcome"
output report-file "$report"

if [ "$outcome" != plan_mismatch ] || [ "${RECONCILER_REPLAN:-1}" != 1 ]; then
  exit "$tool_status"
fi

echo "apply.sh: the reviewed plan no longer matches the cloud and main (nothing was changed); planning again on this commit, for approval" >&2
replan="$work/replan"
mkdir -p "$replan"
run_child - - env GITHUB_OUTPUT= RECONCILER_WORK="$replan" "$here/plan.sh" "$root"
if [ "$tool_status" -ne 0 ]; then
  fail "the new plan could not be made, or has refusals (exit $tool_status): nothing to approve"
fi
output plan-file "$replan/plan.json"
output comment-file "$replan/comment.md"
exit "${RECONCILER_REPLANNED_EXIT:-0}"
