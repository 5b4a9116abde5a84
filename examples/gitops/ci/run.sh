#!/usr/bin/env bash
# run.sh COMMAND ROOT [ARGS...]: what the GitHub Action (action.yml) and the GitLab pipeline run. plan and
# apply go through plan.sh and apply.sh; validate and doctor run as they are; on GitHub, find-plan and
# comment run github-find-plan.sh and github-comment.sh ARGS (ROOT unused). Exit codes listed in
# RECONCILER_OK_EXIT_CODES (default "0") do not fail the step, so a later step can still read the
# outputs and post the plan (the exit-code output says which it was); 130 and 143 (cancelled) always do.
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"

[ $# -ge 2 ] || fail "usage: run.sh COMMAND ROOT [ARGS...]"
command=$1
root=$2
shift 2
case $command in
  plan | apply) target=("$here/$command.sh" "$root" "$@") ;;
  validate | doctor) target=(reconciler "$command" "$root" "$@") ;;
  find-plan | comment) target=("$here/github-$command.sh" "$@") ;;
  *) fail "unknown command '$command': validate, plan, apply, doctor, find-plan or comment" ;;
esac

run_child - - "${target[@]}"
if [ "${target[0]}" = reconciler ]; then
  output exit-code "$tool_status" # plan.sh and apply.sh say theirs
fi
case $tool_status in
  130 | 143) exit "$tool_status" ;;
esac
if [[ " ${RECONCILER_OK_EXIT_CODES:-0} " == *" $tool_status "* ]]; then
  exit 0
fi
exit "$tool_status"
