#!/usr/bin/env bash
# The scaled-out topology on one machine, everything on 127.0.0.1 (README "Topology"):
#
#   nginx :8500 → gunicorn :8501, :8502 → pgbouncer :6432 (transaction pooling)
#                                            ├─ <db>          → PostgreSQL primary :5432
#                                            └─ <db>_replica  → streaming hot standby :5433
#   2 Celery workers, 1 singleton beat (Redis lock, config/beat.py)
#
# Usage: topology.sh up | down | db | status | drop-replica
#   up            everything (db + migrations + app servers, workers, beat, nginx)
#   db            only the replica and pgbouncer (what the tests and CI need)
#   down          stops what `up` started and the replica cluster (kept on disk, fast to start)
#   drop-replica  down, then drops the replica cluster and its replication slot
# Idempotent: what already runs is left running. The primary is never restarted: the script
# adds a replication line to its pg_hba.conf and reloads it, if needed.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

PG_VERSION=${PG_VERSION:-$(ls /etc/postgresql | sort -n | tail -1)}
PRIMARY_PORT=${PRIMARY_PORT:-5432}
REPLICA_PORT=${REPLICA_PORT:-5433}
REPLICA_CLUSTER=${REPLICA_CLUSTER:-replica}
SLOT=${REPLICA_SLOT:-signalsmith_replica}
PGBOUNCER_PORT=${PGBOUNCER_PORT:-6432}
NGINX_PORT=${NGINX_PORT:-8500}
APP_PORTS=${APP_PORTS:-"8501 8502"}
WORKERS=${WORKERS:-2}
RUN_DIR=${TOPOLOGY_DIR:-$ROOT/var/topology}
# PgBouncer runs as postgres, which may not reach into the checkout (e.g. under /root).
PGB_DIR=${PGBOUNCER_DIR:-/tmp/signalsmith-pgbouncer-$PGBOUNCER_PORT}
PY=${PY:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
BASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:$PRIMARY_PORT/signalsmith}
DB=${BASE_URL##*/}
DB=${DB%%\?*}
REDIS=${REDIS_URL:-redis://127.0.0.1:6379/0}

log() { echo "topology: $*"; }
psql_primary() { psql -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -XAtq "$@"; }
psql_replica() { psql -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -XAtq "$@"; }
replica_exists() { [ -d "/etc/postgresql/$PG_VERSION/$REPLICA_CLUSTER" ]; }
replica_datadir() { echo "/var/lib/postgresql/$PG_VERSION/$REPLICA_CLUSTER"; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

need_packages() {
  local missing=()
  command -v pgbouncer >/dev/null || missing+=(pgbouncer)
  command -v nginx >/dev/null || [ "${1:-}" = db ] || missing+=(nginx)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    # Debian starts its own services on install: this script runs its own, on its own ports.
    for s in "${missing[@]}"; do service "$s" stop >/dev/null 2>&1 || true; done
  fi
}

# --- primary: replication allowed from loopback (reload only, never a restart) -------------
prepare_primary() {
  local hba
  hba=$(psql_primary -c "SHOW hba_file")
  if ! grep -Eq '^[[:space:]]*host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
    log "primary: allowing replication from 127.0.0.1 in $hba (reload)"
    # First, so that it wins over a stock "host replication … scram-sha-256" line below.
    sed -i '1i # streaming replica on this machine (deploy/topology/topology.sh)\nhost replication all 127.0.0.1/32 trust' "$hba"
    pg_ctlcluster "$PG_VERSION" main reload
    sleep 0.5
  fi
  local level senders
  level=$(psql_primary -c "SHOW wal_level")
  senders=$(psql_primary -c "SHOW max_wal_senders")
  if [ "$level" = minimal ] || [ "$senders" = 0 ]; then
    echo "topology: the primary has wal_level=$level, max_wal_senders=$senders; streaming needs" \
      "wal_level=replica and max_wal_senders>0, which only a restart of the primary applies." >&2
    exit 1
  fi
  # The replication slot keeps WAL for a stopped replica; bound it so a replica left stopped
  # can never fill the primary's disk (reloadable setting; the slot is then rebuilt).
  if [ "$(psql_primary -c "SHOW max_slot_wal_keep_size")" = "-1" ]; then
    log "primary: max_slot_wal_keep_size = 1GB (reload)"
    psql_primary -c "ALTER SYSTEM SET max_slot_wal_keep_size = '1GB'" -c "SELECT pg_reload_conf()" >/dev/null
  fi
}

replica_streaming() {
  [ "$(psql_replica -c "SELECT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')" 2>/dev/null)" = t ]
}

wait_streaming() {
  for _ in $(seq "${1:-60}"); do
    replica_streaming && return 0
    sleep 0.5
  done
  return 1
}

create_replica() {
  log "replica: creating cluster $PG_VERSION/$REPLICA_CLUSTER on port $REPLICA_PORT from a base backup"
  if replica_exists; then
    pg_ctlcluster "$PG_VERSION" "$REPLICA_CLUSTER" stop --skip-systemctl-redirect 2>/dev/null || true
    pg_dropcluster "$PG_VERSION" "$REPLICA_CLUSTER"
  fi
  psql_primary -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$SLOT' AND NOT active" >/dev/null
  pg_createcluster "$PG_VERSION" "$REPLICA_CLUSTER" -p "$REPLICA_PORT" --start-conf=manual >/dev/null
  local conf=/etc/postgresql/$PG_VERSION/$REPLICA_CLUSTER data
  data=$(replica_datadir)
  cat >"$conf/conf.d/replica.conf" <<EOF
# deploy/topology/topology.sh: a hot standby streaming from the primary on $PRIMARY_PORT
listen_addresses = '127.0.0.1'
port = $REPLICA_PORT
hot_standby = on
hot_standby_feedback = on
max_connections = $(psql_primary -c "SHOW max_connections")
wal_receiver_status_interval = 1s
wal_retrieve_retry_interval = 1s
autovacuum = off
EOF
  cat >"$conf/pg_hba.conf" <<EOF
local all all trust
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
EOF
  find "$data" -mindepth 1 -delete  # pg_basebackup fills the (empty) directory
  as_postgres pg_basebackup -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$data" \
    -R -X stream -C -S "$SLOT" --checkpoint=fast
  pg_ctlcluster "$PG_VERSION" "$REPLICA_CLUSTER" start --skip-systemctl-redirect
}

replica_up() {
  prepare_primary
  if replica_exists && pg_isready -h 127.0.0.1 -p "$REPLICA_PORT" -q && replica_streaming; then
    log "replica: streaming on $REPLICA_PORT"
    return
  fi
  if replica_exists; then
    pg_ctlcluster "$PG_VERSION" "$REPLICA_CLUSTER" start --skip-systemctl-redirect 2>/dev/null || true
    if wait_streaming 30; then
      log "replica: started, streaming on $REPLICA_PORT"
      return
    fi
    log "replica: not streaming (slot lost or diverged?); rebuilding"
  fi
  create_replica
  wait_streaming 60 || { echo "topology: the replica does not stream" >&2; exit 1; }
  log "replica: streaming on $REPLICA_PORT"
}

# --- pgbouncer ------------------------------------------------------------------------------
pgbouncer_up() {
  local dir=$PGB_DIR
  mkdir -p "$dir"
  # Transaction pooling in front of both servers: any name goes to the primary; <name>_replica
  # to the standby, for <db>, test_<db> and the names of earlier runs and of $TOPOLOGY_DBS.
  local names entries=""
  names=$( { cat "$dir/databases" 2>/dev/null || true; printf '%s\n' "$DB" "test_$DB" ${TOPOLOGY_DBS:-}; } | sort -u)
  printf '%s\n' "$names" >"$dir/databases"
  for n in $names; do entries+="${n}_replica = host=127.0.0.1 port=$REPLICA_PORT dbname=$n"$'\n'; done
  cat >"$dir/pgbouncer.ini" <<EOF
[databases]
$entries* = host=127.0.0.1 port=$PRIMARY_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
reserve_pool_size = 5
ignore_startup_parameters = extra_float_digits,options
server_connect_timeout = 3
server_login_retry = 1
query_wait_timeout = 5
server_lifetime = 600
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
admin_users = postgres
EOF
  echo '"postgres" ""' >"$dir/userlist.txt"
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$dir"; fi
  if [ -f "$dir/pgbouncer.pid" ] && kill -0 "$(cat "$dir/pgbouncer.pid")" 2>/dev/null; then
    kill -HUP "$(cat "$dir/pgbouncer.pid")"  # re-read the config
    log "pgbouncer: running on $PGBOUNCER_PORT (config reloaded)"
    return
  fi
  # pgbouncer refuses to run as root.
  as_postgres pgbouncer -d -q "$dir/pgbouncer.ini"
  for _ in $(seq 40); do
    pg_isready -h 127.0.0.1 -p "$PGBOUNCER_PORT" -q && break
    sleep 0.25
  done
  log "pgbouncer: started on $PGBOUNCER_PORT (transaction pooling)"
}

# --- app processes --------------------------------------------------------------------------
app_env() {
  export DJANGO_SETTINGS_MODULE=config.settings.local DEBUG=false LOG_LEVEL=${LOG_LEVEL:-WARNING}
  export DATABASE_URL="postgres://postgres@127.0.0.1:$PGBOUNCER_PORT/$DB"
  export REPLICA_DATABASE_URL="postgres://postgres@127.0.0.1:$PGBOUNCER_PORT/${DB}_replica"
  export REPLICA_CHECK_URL="postgres://postgres@127.0.0.1:$REPLICA_PORT/$DB"
  export DATABASE_POOLER=pgbouncer REDIS_URL="$REDIS"
  export TRUSTED_PROXY_COUNT=1 SITE_URL=${SITE_URL:-http://127.0.0.1:$NGINX_PORT}
  export ALLOWED_HOSTS=${ALLOWED_HOSTS:-127.0.0.1,localhost}
  export CELERY_BEAT_SCHEDULE_FILE=$RUN_DIR/celerybeat-schedule
}

running() { [ -f "$RUN_DIR/$1.pid" ] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }

start() {  # start NAME CMD...: a process in its own session, its pid in $RUN_DIR/NAME.pid
  local name=$1
  shift
  if running "$name"; then
    log "$name: running (pid $(cat "$RUN_DIR/$name.pid"))"
    return
  fi
  setsid "$@" >>"$RUN_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
  log "$name: started (pid $!, log $RUN_DIR/$name.log)"
}

stop() {  # stop NAME: TERM its process group, KILL after 15 s
  local name=$1 pid
  running "$name" || { rm -f "$RUN_DIR/$name.pid"; return 0; }
  pid=$(cat "$RUN_DIR/$name.pid")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$RUN_DIR/$name.pid"
  log "$name: stopped"
}

wait_http() {
  for _ in $(seq 120); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.25
  done
  echo "topology: nothing answers at $1" >&2
  return 1
}

nginx_up() {
  local dir=$RUN_DIR/nginx servers=""
  mkdir -p "$dir/logs"
  for p in $APP_PORTS; do servers+="    server 127.0.0.1:$p max_fails=1 fail_timeout=3s;"$'\n'; done
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log $dir/logs/access.log;
  client_max_body_size 3m;
  upstream app {
$servers    keepalive 32;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      # A dead app server: the request goes to the other one (idempotent requests only).
      proxy_next_upstream error timeout http_502;
      proxy_connect_timeout 2s;
      proxy_read_timeout 60s;
    }
  }
}
EOF
  if [ -f "$dir/nginx.pid" ] && kill -0 "$(cat "$dir/nginx.pid")" 2>/dev/null; then
    nginx -p "$dir" -c "$dir/nginx.conf" -s reload
    log "nginx: running on $NGINX_PORT (config reloaded)"
  else
    nginx -p "$dir" -c "$dir/nginx.conf"
    log "nginx: started on $NGINX_PORT"
  fi
}

app_up() {
  app_env
  mkdir -p "$RUN_DIR"
  if [ "${SKIP_SETUP:-}" != 1 ]; then
    # The database (created if missing), then migrations, straight to the primary, not through
    # the transaction pooler.
    psql -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$DB'" \
      | grep -q 1 || createdb -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres "$DB"
    DATABASE_URL="postgres://postgres@127.0.0.1:$PRIMARY_PORT/$DB" REPLICA_DATABASE_URL='' \
      "$PY" manage.py migrate --noinput -v0
    "$PY" manage.py collectstatic --noinput -v0  # whitenoise serves them (DEBUG off)
  fi
  local i=0
  for p in $APP_PORTS; do
    i=$((i + 1))
    start "app$i" "$PY" -m gunicorn config.wsgi -w "${APP_WORKERS:-2}" -b "127.0.0.1:$p" \
      --timeout 30 --graceful-timeout 10 --log-level warning
  done
  for i in $(seq "$WORKERS"); do
    start "worker$i" "$PY" -m celery -A config worker -c 2 -n "worker$i@%h" --loglevel=INFO \
      --without-mingle --without-gossip
  done
  start beat "$PY" -m config.beat
  for p in $APP_PORTS; do wait_http "http://127.0.0.1:$p/signin/"; done
  nginx_up
  wait_http "http://127.0.0.1:$NGINX_PORT/signin/"
  log "up: http://127.0.0.1:$NGINX_PORT/ (database $DB via pgbouncer :$PGBOUNCER_PORT)"
}

db_down() {
  local pidfile=$PGB_DIR/pgbouncer.pid
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill -INT "$(cat "$pidfile")"
    log "pgbouncer: stopped"
  fi
  if replica_exists; then
    pg_ctlcluster "$PG_VERSION" "$REPLICA_CLUSTER" stop --skip-systemctl-redirect -m fast 2>/dev/null || true
    log "replica: stopped (kept; \`topology.sh drop-replica\` removes it)"
  fi
}

app_down() {
  local dir=$RUN_DIR/nginx
  if [ -f "$dir/nginx.pid" ] && kill -0 "$(cat "$dir/nginx.pid")" 2>/dev/null; then
    nginx -p "$dir" -c "$dir/nginx.conf" -s quit
    log "nginx: stopped"
  fi
  stop beat
  for i in $(seq "$WORKERS"); do stop "worker$i"; done
  local i=0
  for _ in $APP_PORTS; do i=$((i + 1)); stop "app$i"; done
}

status() {
  pg_lsclusters
  psql_replica -c "SELECT 'replica in recovery: ' || pg_is_in_recovery() || ', receiver: ' || coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')" 2>/dev/null || echo "replica: down"
  pg_isready -h 127.0.0.1 -p "$PGBOUNCER_PORT" || true
  for f in "$RUN_DIR"/*.pid; do
    [ -f "$f" ] || continue
    n=$(basename "$f" .pid)
    if running "$n"; then echo "$n: running"; else echo "$n: dead"; fi
  done
}

case "${1:-}" in
  db) need_packages db; replica_up; pgbouncer_up ;;
  up) need_packages; replica_up; pgbouncer_up; app_up ;;
  down) app_down; db_down ;;
  drop-replica)
    app_down; db_down
    if replica_exists; then pg_dropcluster "$PG_VERSION" "$REPLICA_CLUSTER"; log "replica: dropped"; fi
    psql_primary -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$SLOT' AND NOT active" >/dev/null
    ;;
  status) status ;;
  *) echo "usage: $0 up|down|db|status|drop-replica" >&2; exit 2 ;;
esac
