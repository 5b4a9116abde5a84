#!/usr/bin/env bash
# A real OpenStack Glance (Image API v2) on loopback for the contract tests, without Keystone: its
# "trusted" paste pipeline takes the caller's identity from X-Identity-Status / X-Project-Id / X-Roles
# headers, which the cloud client's trusted-header mode sends.
#
#   .ci/glance.sh start    install (first time, ~30 s), configure, migrate, start; prints the URL last
#   .ci/glance.sh stop
#
# Env: GLANCE_HOME (default /tmp/reconciler-glance), GLANCE_PORT (default 19292), GLANCE_VERSION
# (pip requirement, default glance==33.*). One worker, one thread: sqlite does not like concurrency.
set -euo pipefail

home=${GLANCE_HOME:-/tmp/reconciler-glance}
port=${GLANCE_PORT:-19292}
version=${GLANCE_VERSION:-glance==33.*}
url="http://127.0.0.1:$port"
pidfile=$home/glance.pid
say() { echo "[glance] $*" >&2; }

stop() {
  local pid
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

start() {
  mkdir -p "$home/etc" "$home/logs" "$home/images" "$home/staging" "$home/tasks" "$home/locks"
  stop
  if ! "$home/venv/bin/python" -c 'import glance, gunicorn' 2>/dev/null; then
    say "installing $version and gunicorn into $home/venv"
    python3 -m venv "$home/venv"
    "$home/venv/bin/pip" install --quiet --disable-pip-version-check "$version" gunicorn \
      >"$home/logs/pip.log" 2>&1 || { tail -n 30 "$home/logs/pip.log" >&2; exit 1; }
  fi
  # Each run starts from an empty database and store.
  rm -rf "$home/glance.sqlite" "$home/images"/* "$home/staging"/* "$home/tasks"/*

  cat >"$home/etc/glance-api.conf" <<CONF
[DEFAULT]
log_file = $home/logs/glance-api.log
enabled_backends = fs:file
limit_param_default = 25
api_limit_max = 1000
show_image_direct_url = false
enabled_import_methods = [glance-direct]

[database]
connection = sqlite:///$home/glance.sqlite
sqlite_synchronous = false

[glance_store]
default_backend = fs

[fs]
filesystem_store_datadir = $home/images/

[os_glance_staging_store]
filesystem_store_datadir = $home/staging/

[os_glance_tasks_store]
filesystem_store_datadir = $home/tasks/

[oslo_concurrency]
lock_path = $home/locks

[oslo_policy]
enforce_new_defaults = true
enforce_scope = true

[paste_deploy]
flavor = trusted
config_file = $home/etc/glance-api-paste.ini
CONF

  # Glance's own pipeline without the authtoken filter: the context comes from identity headers.
  cat >"$home/etc/glance-api-paste.ini" <<'PASTE'
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

  "$home/venv/bin/glance-manage" --config-file "$home/etc/glance-api.conf" db_sync \
    >"$home/logs/db_sync.log" 2>&1 || { tail -n 30 "$home/logs/db_sync.log" >&2; exit 1; }

  say "starting on $url"
  OS_GLANCE_CONFIG_DIR=$home/etc PYTHONWARNINGS=ignore::DeprecationWarning \
    nohup "$home/venv/bin/gunicorn" --bind "127.0.0.1:$port" --workers 1 --threads 1 \
      --worker-class gthread --timeout 300 --pid "$pidfile" \
      --error-logfile "$home/logs/gunicorn.log" glance.wsgi.api:application \
      >>"$home/logs/stdout.log" 2>&1 </dev/null &
  for _ in $(seq 1 300); do
    if curl -s -o /dev/null -w '%{http_code}' "$url/versions" 2>/dev/null | grep -q 200; then
      echo "$url"
      return 0
    fi
    sleep 0.2
  done
  say "not ready after 60 s:"; tail -n 30 "$home/logs/gunicorn.log" "$home/logs/glance-api.log" >&2 || true
  stop
  exit 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
