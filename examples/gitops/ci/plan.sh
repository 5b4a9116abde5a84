#!/usr/bin/env bash
# plan.sh ROOT... [ARGS...]: `reconciler plan ROOT... --format markdown --out WORK/plans.json ARGS...` (the
# roots are the leading arguments that are not options), and the body of the pull-request comment in
# WORK/comment.md: the Markdown plan, one section per root under one verdict; when the plan failed, the
# error text (never an empty comment). With several roots, a root that could not be planned still gets its
# section, saying why, so a failed plan that printed its Markdown posts it, with a line saying that no plan
# was saved (the tool saves one only when every root was planned). Outputs: exit-code, outcome (planned,
# changes, refused, failed, interrupted), plan-file (empty when none was saved), comment-file. Exits with
# the tool's code.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

take_roots "$@"
[ ${#roots[@]} -ge 1 ] || fail "usage: plan.sh ROOT... [ARGS...]"
work=$(work_dir)
plan="$work/plans.json"
rm -f "$plan" "$work/plans.md" "$work/plans.err" "$work/comment.md"

run_tool "$work/plans.md" "$work/plans.err" plan "${roots[@]}" --format markdown --out "$plan" "${rest[@]}"
cat "$work/plans.err" >&2

case $tool_status in
  0) outcome=planned ;;
  2) outcome=changes ;; # --detailed-exitcode
  3) outcome=refused ;;
  130 | 143) outcome=interrupted ;;
  *) outcome=failed ;;
esac

if [ ! -s "$work/plans.md" ]; then
  python3 "$(dirname "$0")/error_comment.py" "$tool_status" "$work/plans.err" >"$work/comment.md"
elif [ "$outcome" = failed ]; then
  {
    cat "$work/plans.md"
    printf '\n**reconciler plan failed** (exit %s): no saved plan was kept, so nothing can be applied on merge until every root plans.\n' "$tool_status"
  } >"$work/comment.md"
else
  cp "$work/plans.md" "$work/comment.md"
fi

output exit-code "$tool_status"
output outcome "$outcome"
output plan-file "$([ -s "$plan" ] && printf '%s' "$plan")"
output comment-file "$work/comment.md"
exit "$tool_status"
