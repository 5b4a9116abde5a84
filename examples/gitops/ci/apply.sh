#!/usr/bin/env bash
# apply.sh ROOT... --plan FILE [ARGS...]: applies a reviewed saved plan of those roots (the leading
# arguments that are not options, in the order they were planned) as a CI job should:
# - only while this commit is the tip of the branch (GITHUB_SHA on GITHUB_REF_NAME, or CI_COMMIT_SHA on
#   CI_DEFAULT_BRANCH, asked of GitHub or GitLab): a re-run of an older apply must not apply or plan from
#   older manifests and undo later merges. When the branch has moved on, the outcome is `superseded` and
#   the job succeeds without applying: the newer commit's apply does it;
# - `reconciler apply ROOT... --auto-approve --format json --lock-timeout 300 --plan FILE ARGS...`: another
#   apply of a root's set holding its lock is waited for up to 5 minutes. With several roots the tool goes
#   root by root and stops at the first that does not apply; its JSON document's top-level outcome is that
#   root's (the others after it are not run), or applied;
# - with --resume when this job is a re-run (GITHUB_RUN_ATTEMPT above 1, or a retried GitLab job), so a
#   cancelled apply's re-run finishes it (the fresh plan decides what runs, never the journal);
# - outcome plan_mismatch (the cloud or main changed since the review; at any root, those before it
#   applied): checks the tip again, plans every root again on this checkout into WORK/replan/ for someone
#   to approve, and exits RECONCILER_REPLANNED_EXIT (default 0) when that plan was made;
# - RECONCILER_REPLANNED=1 (the approval job's apply of that new plan): refuses unless the repository
#   declares that the approval gate exists (RECONCILER_REPLAN_APPROVAL, set by whoever configured it:
#   required-reviewers on GitHub, protected-environment on GitLab; README.md), and a second mismatch fails;
# - any other failure exits with the tool's code.
# Outputs: exit-code, outcome (the JSON report's, or superseded), report-file, and after a re-plan
# plan-file (the new plan) and comment-file (its Markdown, for the approver).
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"

take_roots "$@"
[ ${#roots[@]} -ge 1 ] || fail "usage: apply.sh ROOT... --plan FILE [ARGS...]"
set -- "${rest[@]}"
plan=""
previous=""
for arg in "$@"; do
  [ "$previous" != --plan ] || plan=$arg
  previous=$arg
done
replanned=${RECONCILER_REPLANNED:-0}
[ -n "$plan" ] || fail "apply.sh applies a reviewed saved plan only: pass --plan FILE"
if [ ! -f "$plan" ] && [ "$replanned" = 1 ]; then
  fail "no new plan waits for approval ($plan does not exist): the apply job made none (it applied the reviewed plan, or failed before planning again)"
fi
[ -f "$plan" ] || fail "the saved plan $plan does not exist"
work=$(work_dir)

# The approval job applies a plan no pull request reviewed: only behind a gate someone declared exists.
require_approval_gate() {
  local expected=required-reviewers where="required reviewers on the reconciler-apply-approval environment"
  if [ "${GITLAB_CI:-}" = true ]; then
    expected=protected-environment
    where="the protected environment reconciler-apply-approval, deployable by the approvers only (GitLab Premium)"
  fi
  [ "${RECONCILER_REPLAN_APPROVAL:-}" = "$expected" ] && return
  fail "no approval gate is declared (RECONCILER_REPLAN_APPROVAL is '${RECONCILER_REPLAN_APPROVAL:-}', not '$expected'), so nobody may have approved this new plan; nothing is applied. Whoever configures $where sets RECONCILER_REPLAN_APPROVAL=$expected (README.md, \"Before the first run\"). Until then, review the change in a pull request and merge it."
}

# 0: this commit is the branch's tip, 1: the branch has moved on, 2: it cannot be told.
is_tip() {
  if [ "${GITHUB_ACTIONS:-}" = true ]; then
    "$here/github-tip.sh"
  elif [ "${GITLAB_CI:-}" = true ]; then
    "$here/gitlab-tip.sh"
  else
    echo "apply.sh: runs on GitHub Actions or GitLab CI only: elsewhere it cannot tell the branch's tip" >&2
    return 2
  fi
}

# ensure_tip NEXT: stops the job (outcome superseded, exit 0) when the branch has moved on, before NEXT.
ensure_tip() {
  local code=0
  is_tip || code=$?
  case $code in
    0) return ;;
    1)
      echo "apply.sh: the branch has moved on since this commit: no $1 here (that would undo what was merged since); the apply of the newest commit does it" >&2
      output exit-code 0
      output outcome superseded
      exit 0
      ;;
    *) fail "cannot tell whether this commit is still the tip of the branch; nothing was done (retry the job)" ;;
  esac
}

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

[ "$replanned" != 1 ] || require_approval_gate
ensure_tip "apply"
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
run_tool "$report" - apply "${roots[@]}" --auto-approve --format json --lock-timeout 300 "${resume[@]}" "$@"
outcome=$(json_field "$report" outcome)
root_outcomes "$report" | sed 's/^/apply.sh: root /' >&2
output exit-code "$tool_status"
output outcome "$outcome"
output report-file "$report"

if [ "$outcome" != plan_mismatch ] || [ "$replanned" = 1 ]; then
  exit "$tool_status"
fi

ensure_tip "new plan"
echo "apply.sh: the reviewed plan no longer matches the cloud and main (nothing was changed); planning again on this commit, for approval" >&2
replan="$work/replan"
mkdir -p "$replan"
run_child - - env GITHUB_OUTPUT= RECONCILER_WORK="$replan" "$here/plan.sh" "${roots[@]}"
if [ "$tool_status" -ne 0 ]; then
  fail "the new plan could not be made, or has refusals (exit $tool_status): nothing to approve"
fi
output plan-file "$replan/plans.json"
output comment-file "$replan/comment.md"
exit "${RECONCILER_REPLANNED_EXIT:-0}"
