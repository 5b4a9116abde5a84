#!/usr/bin/env bash
# Installs reconciler into a virtual environment of its own, from hash-checked requirements only: every
# file pip takes (reconciler's wheel and each dependency's) must match a hash listed in the repository,
# reviewed like code. A bare name, name==version, or a git URL is refused: the name `reconciler` on the
# public index belongs to an unrelated project, and a git URL pins reconciler's code but not its
# dependencies, which pip would take unpinned from the index and run with the cloud credentials in reach.
#
# RECONCILER_PACKAGE (or $1): `--require-hashes -r FILE`, FILE listing nhncloud-image-reconciler and all
# its dependencies, each with --hash=sha256:... (the recipes ship FILE as a template to fill in:
# reconciler-requirements.txt; README.md, "Before the first run", says how to make it). Wheels only
# (--only-binary :all:): building a source distribution would fetch build tools no hash covers.
#
# RECONCILER_VENV (a folder outside the checkout: the action and .gitlab-ci.yml set it) is a virtual
# environment made with RECONCILER_PYTHON (default python3; 3.11 or newer): never the runner's own Python,
# whose packages a GitLab shell executor or a self-hosted runner shares between jobs. Once per job: a second
# call with the same requirements does nothing. The other scripts (lib.sh) put its bin/ first on PATH.
set -euo pipefail
here=$(dirname "$0")
# Found before lib.sh puts the environment being replaced first on PATH.
python=$(command -v "${RECONCILER_PYTHON:-python3}") || python=${RECONCILER_PYTHON:-python3}
. "$here/lib.sh"

spec="${1:-${RECONCILER_PACKAGE:-}}"
venv="${RECONCILER_VENV:-}"
expected="--require-hashes -r FILE (FILE lists nhncloud-image-reconciler and every dependency with --hash=sha256:...; README.md, \"Before the first run\")"
hashed='^--require-hashes -r ([^[:space:]]+)$'
git_url='git\+[a-z]+://'

case "$spec" in
  "") fail "RECONCILER_PACKAGE is empty; set it to $expected" ;;
  FILL-IN*) fail "RECONCILER_PACKAGE is still the placeholder ($spec); set it to $expected" ;;
esac
if [[ "$spec" =~ $hashed ]]; then
  requirements=${BASH_REMATCH[1]}
elif [[ "$spec" =~ $git_url ]]; then
  fail "RECONCILER_PACKAGE is a git URL ($spec): that pins reconciler's code, not its dependencies (pip would take them unpinned from the index); set it to $expected"
else
  fail "RECONCILER_PACKAGE is not pinned ($spec); set it to $expected"
fi
[ -n "$venv" ] || fail "RECONCILER_VENV is not set: name a folder outside the checkout for the virtual environment"
"$python" "$here/hashed_requirements.py" "$requirements" || exit 1
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  fail "$python is older than Python 3.11, which reconciler needs (set RECONCILER_PYTHON, or install it on the runner)"
fi

stamp="$spec $(cksum <"$requirements")"
if [ "$(cat "$venv/.reconciler-package" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ]; then
  fail "RECONCILER_VENV ($venv) exists and is not a virtual environment: name a new folder"
fi
"$python" -m venv --clear "$venv"
"$venv/bin/python" -m pip install --disable-pip-version-check --no-input --only-binary :all: \
  --require-hashes -r "$requirements"
printf '%s' "$stamp" >"$venv/.reconciler-package"
