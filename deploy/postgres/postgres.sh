#!/usr/bin/env bash
# PostgreSQL for tests and dev: a private cluster of Debian's `postgresql` package, data in
# deploy/postgres/data/, listening on 127.0.0.1 only. Every sub-command is idempotent.
#
#   postgres.sh ensure   install the package if missing, init the cluster if needed, start it,
#                        create the database; print its SQLAlchemy URL on stdout
#   postgres.sh start    the same as ensure
#   postgres.sh stop     stop our cluster (fast shutdown); a no-op when it does not run
#   postgres.sh status   exit 0 when a server answers on the port, 1 otherwise
#   postgres.sh url      print the SQLAlchemy URL (whether or not the server runs)
#
# A server that already answers on the port with our credentials (e.g. another worktree's
# cluster) is reused. PostgreSQL refuses to run as root: as root the cluster runs as the
# `postgres` system user the package creates.
#
# Environment (all optional):
#   ESCALATOR_PG_PORT (54329)  ESCALATOR_PG_DATA (deploy/postgres/data)
#   ESCALATOR_PG_USER (escalator)  ESCALATOR_PG_PASSWORD (escalator)  ESCALATOR_PG_DB (escalator)
#   ESCALATOR_PG_START_TIMEOUT (60 seconds)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="${ESCALATOR_PG_PORT:-54329}"
DATA="${ESCALATOR_PG_DATA:-$HERE/data}"
PGUSER_NAME="${ESCALATOR_PG_USER:-escalator}"
PGPASS="${ESCALATOR_PG_PASSWORD:-escalator}"
DB="${ESCALATOR_PG_DB:-escalator}"
START_TIMEOUT="${ESCALATOR_PG_START_TIMEOUT:-60}"
HOST=127.0.0.1

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# As root the cluster belongs to the postgres user, who must reach the data folder; a
# checkout under a private home (e.g. /root) is out of its reach, so fall back to /var/tmp.
if [[ "$(id -u)" == 0 && -z "${ESCALATOR_PG_DATA:-}" ]] && id postgres >/dev/null 2>&1 \
    && ! runuser -u postgres -- test -x "$(dirname "$DATA")"; then
    DATA="/var/tmp/escalator-postgres-$(echo "$HERE" | sha1sum | cut -c1-10)"
fi
CLUSTER="$DATA/cluster"
LOGFILE="$DATA/postgres.log"

url() { echo "postgresql+psycopg://$PGUSER_NAME:$PGPASS@$HOST:$PORT/$DB"; }

# The newest PostgreSQL server binaries Debian installed, e.g. /usr/lib/postgresql/15/bin.
bindir() {
    local dir
    dir="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null \
        | sort -V | tail -n 1)"
    [[ -n "$dir" && -x "$dir/pg_ctl" ]] && echo "$dir"
}

install_package() {
    bindir >/dev/null && command -v psql >/dev/null && return 0
    local sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null || die "PostgreSQL is not installed and we are not root (no sudo)"
        sudo=(sudo)
    fi
    log "installing Debian's postgresql package"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        postgresql postgresql-client >/dev/null
    bindir >/dev/null || die "postgresql installed, but no /usr/lib/postgresql/*/bin/pg_ctl"
}

# as_owner CMD...: run CMD as the cluster's owner (the postgres user when we are root).
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

answers() {
    PGPASSWORD="$PGPASS" psql -h "$HOST" -p "$PORT" -U "$PGUSER_NAME" -d postgres -Atqc 'SELECT 1' \
        >/dev/null 2>&1
}

port_open() { pg_isready -q -h "$HOST" -p "$PORT" >/dev/null 2>&1; }

init_cluster() {
    [[ -f "$CLUSTER/PG_VERSION" ]] && return 0
    local bin="$1" pwfile
    log "initialising a cluster in $CLUSTER"
    mkdir -p "$DATA"
    rm -rf "$CLUSTER"
    mkdir -p "$CLUSTER"
    pwfile="$DATA/.pwfile"
    printf '%s\n' "$PGPASS" >"$pwfile"
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres:postgres "$DATA" "$CLUSTER" "$pwfile"
        runuser -u postgres -- test -x "$DATA" || die "user postgres cannot reach $DATA; set ESCALATOR_PG_DATA"
    fi
    chmod 700 "$CLUSTER"
    as_owner "$bin/initdb" -D "$CLUSTER" -U "$PGUSER_NAME" --pwfile="$pwfile" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
}

start() {
    install_package
    if answers; then
        create_db
        url
        return 0
    fi
    port_open && die "a server on $HOST:$PORT does not accept user $PGUSER_NAME; set ESCALATOR_PG_PORT"
    local bin
    bin="$(bindir)"
    init_cluster "$bin"
    [[ "$(id -u)" == 0 ]] && chown postgres:postgres "$DATA"
    log "starting PostgreSQL ($bin) on $HOST:$PORT, data in $DATA"
    # Sockets only in the cluster folder and TCP on loopback; fsync off: test data only.
    as_owner "$bin/pg_ctl" -D "$CLUSTER" -l "$LOGFILE" -w -t "$START_TIMEOUT" start \
        -o "-c listen_addresses=$HOST -p $PORT -c unix_socket_directories='$CLUSTER' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        >/dev/null || { tail -n 30 "$LOGFILE" >&2 || true; die "PostgreSQL did not start"; }
    answers || die "PostgreSQL started but does not answer on $HOST:$PORT"
    create_db
    url
}

create_db() {
    local exists
    exists="$(PGPASSWORD="$PGPASS" psql -h "$HOST" -p "$PORT" -U "$PGUSER_NAME" -d postgres -Atqc \
        "SELECT 1 FROM pg_database WHERE datname = '$DB'")"
    if [[ "$exists" != 1 ]]; then
        PGPASSWORD="$PGPASS" psql -h "$HOST" -p "$PORT" -U "$PGUSER_NAME" -d postgres -qc \
            "CREATE DATABASE \"$DB\"" >/dev/null
    fi
}

stop() {
    [[ -f "$CLUSTER/postmaster.pid" ]] || return 0
    local bin
    bin="$(bindir)" || return 0
    as_owner "$bin/pg_ctl" -D "$CLUSTER" -m fast -w stop >/dev/null || true
}

case "${1:-}" in
    ensure | start) start ;;
    stop) stop ;;
    status) answers || exit 1 ;;
    url) url ;;
    *) die "usage: postgres.sh ensure|start|stop|status|url" ;;
esac
