#!/usr/bin/env bash
# run.sh COMMAND ROOTS [ARGS...]: what the GitHub Action (action.yml) and the GitLab pipeline run. ROOTS is
# one argument: the root folders separated by whitespace, in the order they are planned and applied (a
# path with whitespace in it is not supported). plan and apply go through plan.sh and apply.sh, with every
# root; validate runs on every root; doctor checks one root; on GitHub, find-plan and comment run
# github-find-plan.sh and github-comment.sh ARGS (ROOTS unused). Exit codes listed in
# RECONCILER_OK_EXIT_CODES (default "0") do not fail the step, so a later step can still read the outputs
# and post the plan (the exit-code output says which it was); 130 and 143 (cancelled) always do.
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"

[ $# -ge 2 ] || fail "usage: run.sh COMMAND ROOTS [ARGS...]"
command=$1
root_list=$2
shift 2
case $command in
  plan | apply | validate | doctor) split_roots "$root_list" ;;
esac
case $command in
  plan | apply) target=("$here/$command.sh" "${roots[@]}" "$@") ;;
  validate) target=(reconciler validate "${roots[@]}" "$@") ;;
  doctor)
    [ ${#roots[@]} -eq 1 ] || fail "doctor checks one root at a time, not '$root_list'"
    target=(reconciler doctor "${roots[@]}" "$@")
    ;;
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
