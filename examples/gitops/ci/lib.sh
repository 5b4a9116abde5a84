# Shared by the recipe scripts beside this file (sourced, never run). Bash 4.4 or newer.
#
# RECONCILER_WORK is where the scripts keep what a job makes: the saved plan (plans.json, whatever the
# number of roots), its journals (plans.json.root-N.progress.json with several roots), the report and the
# comment body. On GitHub it defaults to
# $RUNNER_TEMP/reconciler, outside the checkout, so actions/checkout never cleans it mid-job.
#
# RECONCILER_VENV, when set, is the virtual environment install.sh made: its bin/ comes first on PATH.

if [ -n "${RECONCILER_VENV:-}" ]; then
  PATH="$RECONCILER_VENV/bin:$PATH"
fi

work_dir() {
  local dir="${RECONCILER_WORK:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}/reconciler}"
  mkdir -p "$dir"
  printf '%s\n' "$dir"
}

# output NAME VALUE: a step output on GitHub ($GITHUB_OUTPUT), and a line in the log everywhere.
output() {
  printf 'reconciler-ci: %s=%s\n' "$1" "$2" >&2
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
  fi
}

fail() {
  printf '%s: %s\n' "${0##*/}" "$*" >&2
  exit 1
}

# split_roots LIST: sets `roots` to the roots in LIST, one string separated by whitespace (the action's
# `root` input, the pipelines' RECONCILER_ROOTS). A root whose path holds whitespace cannot be given this
# way: when LIST names an existing folder as a whole, that is what was meant, and it is refused.
split_roots() {
  read -ra roots <<<"$1"
  [ ${#roots[@]} -gt 0 ] || fail "no root given: name one or more root folders, separated by spaces"
  if [ ${#roots[@]} -gt 1 ] && [ -d "$1" ]; then
    fail "the root '$1' has whitespace in its path, which is not supported: roots are separated by whitespace (rename the folder)"
  fi
  local root
  for root in "${roots[@]}"; do
    [[ $root != -* ]] || fail "the root '$root' starts with '-': name it as ./$root"
  done
}

# take_roots ARGS...: sets `roots` to the leading arguments that are not options (the roots, in order)
# and `rest` to the others (the options, passed on as they are). A root cannot start with '-'.
take_roots() {
  roots=()
  while [ $# -gt 0 ] && [[ $1 != -* ]]; do
    roots+=("$1")
    shift
  done
  rest=("$@")
}

# run_tool OUT ERR ARGS...: runs `reconciler ARGS...` with stdout in the file OUT and stderr in the file
# ERR (`-`: this job's own stream, live), and sets tool_status to its exit code (run_child: any command, e.g.
# another of these scripts, which passes the signal on in turn). A cancelled job must reach the tool, which
# then stops, runs its compensations and exits 130 / 143 (docs/safety.md). A script waiting on a foreground
# child defers its traps until the child ends, so the tool runs in the background and this script waits.
# The tool stays in the job's process group, so a runner that kills the group (GitLab's SIGKILL) kills it
# too. A script's background child starts with INT ignored; the subshell resets INT and QUIT to their
# defaults before it execs the command (bash 4.4 or newer), so the tool handles INT itself.
#
# Who signals what: GitHub's runner signals the step's process alone (INT, then TERM), so this script
# passes INT and TERM on to the tool. GitLab's shell executor signals the job's whole process group, which
# the tool is in: it gets the signal directly, and passing it on would give it a second one (which skips
# the 2 s grace for calls in flight), so on GitLab (GITLAB_CI=true) nothing is passed on (other executors:
# unverified, README.md). RECONCILER_FORWARD_SIGNALS (1: pass on, 0: not) overrides the choice.
run_tool() {
  run_child "$1" "$2" reconciler "${@:3}"
}

run_child() {
  local out=$1 err=$2
  shift 2
  tool_pid="" tool_signal=""
  trap '_forward INT' INT
  trap '_forward TERM' TERM
  # `-` keeps this job's stream as it is (reopening /dev/stdout would truncate a file behind it).
  if [ "$out" = - ] && [ "$err" = - ]; then
    (trap - INT QUIT && exec "$@") &
  elif [ "$out" = - ]; then
    (trap - INT QUIT && exec "$@") 2>"$err" &
  elif [ "$err" = - ]; then
    (trap - INT QUIT && exec "$@") >"$out" &
  else
    (trap - INT QUIT && exec "$@") >"$out" 2>"$err" &
  fi
  tool_pid=$!
  # A signal that came while the command was starting may not have reached it: pass it on in any case.
  if [ -n "$tool_signal" ]; then
    kill -s "$tool_signal" "$tool_pid" 2>/dev/null || true
  fi
  # `wait` returns early when a trapped signal arrives: wait again until the tool has exited, then once
  # more for its status (bash keeps it).
  while kill -0 "$tool_pid" 2>/dev/null; do
    wait "$tool_pid" || true
  done
  tool_status=0
  wait "$tool_pid" || tool_status=$?
  trap - INT TERM
}

_forwarding() {
  local default=1
  [ "${GITLAB_CI:-}" != true ] || default=0
  [ "${RECONCILER_FORWARD_SIGNALS:-$default}" = 1 ]
}

_forward() {
  tool_signal=$1
  if [ -n "$tool_pid" ] && _forwarding; then
    kill -s "$1" "$tool_pid" 2>/dev/null || true
  fi
}

# json_field FILE KEY: the top-level string KEY of the JSON document in FILE, or nothing.
json_field() {
  python3 - "$1" "$2" <<'PY'
import json, sys
try:
    with open(sys.argv[1], encoding="utf-8") as handle:
        value = json.load(handle).get(sys.argv[2])
except (OSError, ValueError, AttributeError):
    value = None
print(value if isinstance(value, str) else "")
PY
}

# root_outcomes FILE: one line "ROOT: OUTCOME" per root of the reconciler-apply-reports document in FILE
# (several roots), or nothing (one root's report, or no document).
root_outcomes() {
  python3 - "$1" <<'PY'
import json, sys
try:
    with open(sys.argv[1], encoding="utf-8") as handle:
        roots = json.load(handle).get("roots")
except (OSError, ValueError, AttributeError):
    roots = None
for entry in roots if isinstance(roots, list) else []:
    if isinstance(entry, dict):
        print(f"{entry.get('root')}: {entry.get('outcome')}")
PY
}
