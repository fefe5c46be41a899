#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the PostgreSQL leg of the tests:
#   eval "$(tests/postgres-cluster.sh start)"   # exports PROCUREMENT_TEST_POSTGRES and PROCUREMENT_PG_DIR
#   tests/postgres-cluster.sh stop "$PROCUREMENT_PG_DIR"
# initdb runs as the unprivileged `postgres` user (created if missing) in a temp folder, on a free
# loopback port; trust auth on loopback only. Prints nothing on stdout but the exports.
set -euo pipefail
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
case "${1:-}" in
  start)
    [ -x "$PGBIN/initdb" ] || { echo "no PostgreSQL server binaries (install postgresql-15)" >&2; exit 1; }
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    DIR=$(mktemp -d /tmp/procurement-pg.XXXXXX)
    chown postgres "$DIR"
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    su postgres -s /bin/sh -c "$PGBIN/initdb -D $DIR/data -A trust -U postgres --no-sync -E UTF8 >$DIR/initdb.log 2>&1"
    su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D $DIR/data -l $DIR/server.log -w -o \"-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=256MB\" start >/dev/null"
    echo "export PROCUREMENT_TEST_POSTGRES='Host=127.0.0.1;Port=$PORT;Username=postgres'"
    echo "export PROCUREMENT_PG_DIR='$DIR'"
    ;;
  stop)
    DIR=${2:?usage: postgres-cluster.sh stop DIR}
    su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D $DIR/data -m fast -w stop >/dev/null" || true
    rm -rf "$DIR"
    ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
