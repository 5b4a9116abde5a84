#!/usr/bin/env bash
# Installs reconciler from a pinned source, never by a bare name from a package index (the name
# `reconciler` there belongs to an unrelated project, and an unpinned name runs whoever publishes it with
# the cloud credentials in its environment). RECONCILER_PACKAGE (or $1) is one of:
#   nhncloud-image-reconciler @ git+https://HOST/OWNER/REPO@COMMIT   (COMMIT: 40 hex digits)
#   --require-hashes -r FILE    (FILE pins the wheel and every dependency with --hash=sha256:...)
# The recipes ship a value starting with FILL-IN, which is refused: fill in the commit you reviewed.
# RECONCILER_VENV, when set, is a virtual environment made for it (once per job: a second call with the
# same package does nothing), added to GITHUB_PATH on GitHub; otherwise RECONCILER_PYTHON (default
# python3) is the Python to install into.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

spec="${1:-${RECONCILER_PACKAGE:-}}"
python="${RECONCILER_PYTHON:-python3}"
expected='nhncloud-image-reconciler @ git+https://HOST/OWNER/REPO@<40-hex commit>, or --require-hashes -r FILE'
git_url='^(nhncloud-image-reconciler @ )?git\+https://[^[:space:]@]+@[0-9a-f]{40}$'
hashed='^--require-hashes -r ([^[:space:]]+)$'

case "$spec" in
  "") fail "RECONCILER_PACKAGE is empty; set it to $expected" ;;
  FILL-IN*) fail "RECONCILER_PACKAGE is still the placeholder ($spec); set it to $expected (the reconciler commit you reviewed)" ;;
esac
if [[ "$spec" =~ $git_url ]]; then
  source=("$spec")
elif [[ "$spec" =~ $hashed ]]; then
  source=(--require-hashes -r "${BASH_REMATCH[1]}")
else
  fail "RECONCILER_PACKAGE is not pinned ($spec); set it to $expected"
fi

if [ -n "${RECONCILER_VENV:-}" ]; then
  if [ "$(cat "$RECONCILER_VENV/.reconciler-package" 2>/dev/null)" = "$spec" ]; then
    exit 0
  fi
  "$python" -m venv "$RECONCILER_VENV"
  python="$RECONCILER_VENV/bin/python"
  if [ -n "${GITHUB_PATH:-}" ]; then
    printf '%s\n' "$RECONCILER_VENV/bin" >>"$GITHUB_PATH"
  fi
fi
"$python" -m pip install --disable-pip-version-check --no-input "${source[@]}"
if [ -n "${RECONCILER_VENV:-}" ]; then
  printf '%s' "$spec" >"$RECONCILER_VENV/.reconciler-package"
fi
