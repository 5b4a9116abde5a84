#!/usr/bin/env bash
# plan.sh ROOT [ARGS...]: `reconciler plan ROOT --format markdown --out WORK/plan.json ARGS...`, and the
# body of the pull-request comment in WORK/comment.md: the Markdown plan, or, when the plan failed, the
# error text (never an empty comment). Outputs: exit-code, outcome (planned, changes, refused, failed,
# interrupted), plan-file (empty when none was saved), comment-file. Exits with the tool's code.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -ge 1 ] || fail "usage: plan.sh ROOT [ARGS...]"
root=$1
shift
work=$(work_dir)
plan="$work/plan.json"
rm -f "$plan" "$work/plan.md" "$work/plan.err" "$work/comment.md"

run_tool "$work/plan.md" "$work/plan.err" plan "$root" --format markdown --out "$plan" "$@"
cat "$work/plan.err" >&2

case $tool_status in
  0) outcome=planned ;;
  2) outcome=changes ;; # --detailed-exitcode
  3) outcome=refused ;;
  130 | 143) outcome=interrupted ;;
  *) outcome=failed ;;
esac

if [ "$outcome" != failed ] && [ -s "$work/plan.md" ]; then
  cp "$work/plan.md" "$work/comment.md"
else
  python3 "$(dirname "$0")/error_comment.py" "$tool_status" "$work/plan.err" >"$work/comment.md"
fi

output exit-code "$tool_status"
output outcome "$outcome"
output plan-file "$([ -s "$plan" ] && printf '%s' "$plan")"
output comment-file "$work/comment.md"
exit "$tool_status"
