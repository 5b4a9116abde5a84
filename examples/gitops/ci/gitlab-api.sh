# Sourced by the GitLab recipe scripts: gitlab_get PATH prints GitLab's answer to GET $CI_API_V4_URL/PATH;
# gitlab_pages PATH prints every page of a list, one JSON document per line; gitlab_send METHOD PATH
# ARGS... sends a form. The token (GITLAB_API_TOKEN) reaches curl as a header on its standard input
# (`--header @-`, written by printf, a shell builtin): never on a command line, never in a file, so
# nothing is left behind however the script ends (an `exec`, a signal).

: "${GITLAB_API_TOKEN:?GITLAB_API_TOKEN is not set}"

_gitlab_curl() {
  printf 'PRIVATE-TOKEN: %s\n' "$GITLAB_API_TOKEN" | curl --silent --show-error --fail --header @- "$@"
}

gitlab_get() {
  _gitlab_curl "${CI_API_V4_URL:?}/$1"
}

gitlab_pages() {
  local page=1 answer separator='?'
  [[ "$1" != *'?'* ]] || separator='&'
  while [ "$page" -le 50 ]; do
    answer=$(gitlab_get "$1${separator}per_page=100&page=$page") || return 1
    printf '%s\n' "$answer"
    python3 -c 'import json, sys; sys.exit(0 if len(json.loads(sys.argv[1])) == 100 else 1)' "$answer" || return 0
    page=$((page + 1))
  done
}

gitlab_send() {
  local method=$1 path=$2
  shift 2
  _gitlab_curl --output /dev/null --request "$method" "$@" "${CI_API_V4_URL:?}/$path"
}
