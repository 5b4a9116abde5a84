#!/usr/bin/env bash
# Real OpenStack Glance servers (Image API v2) on loopback, without Keystone: their "trusted" paste
# pipeline takes the caller's identity from X-Identity-Status / X-Project-Id / X-Roles headers, which the
# cloud client's trusted-header mode (contract tests) and the end-to-end tier's identity front send.
#
#   .ci/glance.sh start    install (first time, ~40 s), configure, migrate, start both servers; prints the
#                          second server's URL, then the first's on the last line (as before)
#   .ci/glance.sh stop     stops both
#
# Two servers stand for two regions (the end-to-end tier copies between them): the first on GLANCE_PORT
# (default 19292), the second on GLANCE_PORT+1 (19293). Each has its own config, sqlite database, store,
# pid and logs under GLANCE_HOME/1 and GLANCE_HOME/2 (default /tmp/reconciler-glance); both run from one
# virtualenv, GLANCE_HOME/venv, installed once. GLANCE_SERVERS=1 starts only the first. GLANCE_VERSION is
# the pip requirement (default glance==33.*). One worker, one thread each: sqlite does not like concurrency.
set -euo pipefail

home=${GLANCE_HOME:-/tmp/reconciler-glance}
port=${GLANCE_PORT:-19292}
count=${GLANCE_SERVERS:-2}
version=${GLANCE_VERSION:-glance==33.*}
say() { echo "[glance] $*" >&2; }

case "$count" in 1 | 2) ;; *) say "GLANCE_SERVERS must be 1 or 2"; exit 2 ;; esac

stop_pidfile() {
  local pidfile=$1 pid
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

stop() {
  # $home/glance.pid: a server started by the one-server version of this script.
  stop_pidfile "$home/glance.pid"
  stop_pidfile "$home/1/glance.pid"
  stop_pidfile "$home/2/glance.pid"
}

# configure N PORT: a fresh database and store for server N, and its config files.
configure() {
  local dir=$home/$1
  mkdir -p "$dir/etc" "$dir/logs" "$dir/images" "$dir/staging" "$dir/tasks" "$dir/locks"
  # Each start begins from an empty database and store.
  rm -rf "$dir/glance.sqlite" "$dir/images"/* "$dir/staging"/* "$dir/tasks"/*

  cat >"$dir/etc/glance-api.conf" <<CONF
[DEFAULT]
log_file = $dir/logs/glance-api.log
enabled_backends = fs:file
limit_param_default = 25
api_limit_max = 1000
show_image_direct_url = false
enabled_import_methods = [glance-direct]

[database]
connection = sqlite:///$dir/glance.sqlite
sqlite_synchronous = false

[glance_store]
default_backend = fs

[fs]
filesystem_store_datadir = $dir/images/

[os_glance_staging_store]
filesystem_store_datadir = $dir/staging/

[os_glance_tasks_store]
filesystem_store_datadir = $dir/tasks/

[oslo_concurrency]
lock_path = $dir/locks

[oslo_policy]
enforce_new_defaults = true
enforce_scope = true

[paste_deploy]
flavor = trusted
config_file = $dir/etc/glance-api-paste.ini
CONF

  # Glance's own pipeline without the authtoken filter: the context comes from identity headers.
  cat >"$dir/etc/glance-api-paste.ini" <<'PASTE'
[composite:glance-api-trusted]
paste.composite_factory = glance.api:root_app_factory
/: api

[composite:api]
paste.composite_factory = glance.api:pipeline_factory
trusted = http_proxy_to_wsgi versionnegotiation context rootapp

[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: apiversions
/v2: apiv2app

[app:apiversions]
paste.app_factory = glance.api.versions:create_resource

[app:apiv2app]
paste.app_factory = glance.api.v2.router:API.factory

[filter:versionnegotiation]
paste.filter_factory = glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory

[filter:context]
paste.filter_factory = glance.api.middleware.context:ContextMiddleware.factory

[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory
PASTE

  "$home/venv/bin/glance-manage" --config-file "$dir/etc/glance-api.conf" db_sync \
    >"$dir/logs/db_sync.log" 2>&1 || { tail -n 30 "$dir/logs/db_sync.log" >&2; return 1; }
}

# launch N PORT
launch() {
  local dir=$home/$1
  say "starting server $1 on http://127.0.0.1:$2"
  OS_GLANCE_CONFIG_DIR=$dir/etc PYTHONWARNINGS=ignore::DeprecationWarning \
    nohup "$home/venv/bin/gunicorn" --bind "127.0.0.1:$2" --workers 1 --threads 1 \
      --worker-class gthread --timeout 300 --pid "$dir/glance.pid" \
      --error-logfile "$dir/logs/gunicorn.log" glance.wsgi.api:application \
      >>"$dir/logs/stdout.log" 2>&1 </dev/null &
}

ready() {
  curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/versions" 2>/dev/null | grep -q 200
}

start() {
  mkdir -p "$home/logs"
  stop
  if ! "$home/venv/bin/python" -c 'import glance, gunicorn' 2>/dev/null; then
    say "installing $version and gunicorn into $home/venv"
    python3 -m venv "$home/venv"
    "$home/venv/bin/pip" install --quiet --disable-pip-version-check "$version" gunicorn \
      >"$home/logs/pip.log" 2>&1 || { tail -n 30 "$home/logs/pip.log" >&2; exit 1; }
  fi
  local n pids=()
  for n in $(seq 1 "$count"); do configure "$n" & pids+=($!); done
  for n in "${pids[@]}"; do wait "$n" || exit 1; done
  for n in $(seq 1 "$count"); do launch "$n" $((port + n - 1)); done
  for _ in $(seq 1 300); do
    local all=yes
    for n in $(seq 1 "$count"); do ready $((port + n - 1)) || all=no; done
    if [ "$all" = yes ]; then
      # The first server's URL last: `tail -n 1` takes it, as with the one-server version.
      for n in $(seq "$count" -1 1); do echo "http://127.0.0.1:$((port + n - 1))"; done
      return 0
    fi
    sleep 0.2
  done
  say "not ready after 60 s:"
  for n in $(seq 1 "$count"); do tail -n 30 "$home/$n/logs/gunicorn.log" "$home/$n/logs/glance-api.log" >&2 || true; done
  stop
  exit 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
