#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests: a new cluster under /tmp,
# listening only on 127.0.0.1, trust authentication for local test use only.
# Prints the URL to use; `scripts/postgres.sh stop` stops it.
# Needs Debian's postgresql package (initdb, pg_ctl); as root it runs the server as `postgres`.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${LIFELINE_TEST_POSTGRES_PORT:-54329}
# Outside the checkout: the server runs as `postgres`, which may not reach a root-owned clone.
DIR="${TMPDIR:-/tmp}/lifeline-postgres-$PORT"
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  echo "postgres.sh: PostgreSQL server binaries not found (Debian: apt-get install postgresql)" >&2
  exit 1
fi
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "${1:-start}" = "stop" ]; then
  [ -d "$DIR/data" ] && as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true
  exit 0
fi
mkdir -p "$DIR"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$DIR"; fi
if [ ! -f "$DIR/data/PG_VERSION" ]; then
  as_owner "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 >"$DIR/initdb.log" 2>&1
fi
if ! as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
  as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c max_connections=200" start >/dev/null
fi
echo "postgres://postgres@127.0.0.1:$PORT/postgres"
