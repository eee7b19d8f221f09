# Sourced by .ci/run: a throwaway PostgreSQL for the tests that run on a Postgres-backed Dagster instance
# (tests/reliability/test_postgres_instance.py). Debian's `postgresql` package (installed if missing);
# initdb in a temp dir, run as a non-root user (PostgreSQL refuses root, and CI runs as root), on a free
# loopback port; stopped (and its directory removed) when the calling shell exits, even on failure.
# Exports DAGSTER_CARGO_TEST_PG_DSN for the tests.

pg_bin() {
  local found
  found=$(command -v initdb 2>/dev/null || true)
  if [ -z "$found" ]; then
    found=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || true)
  fi
  [ -n "$found" ] && dirname "$found"
}

start_throwaway_postgres() {
  local bin user dir port
  bin=$(pg_bin || true)
  if [ -z "$bin" ]; then
    echo "== installing postgresql (Debian) for the Postgres-backed Dagster instance tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    bin=$(pg_bin)
  fi
  user=postgres
  if ! id "$user" >/dev/null 2>&1; then
    user=nobody
  fi
  dir=$(mktemp -d /tmp/cargo-ci-pg.XXXXXX)
  chown "$user" "$dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  PG_CI_DIR=$dir PG_CI_BIN=$bin PG_CI_USER=$user
  trap stop_throwaway_postgres EXIT
  runuser -u "$user" -- "$bin/initdb" -D "$dir/data" -U cargo --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
  runuser -u "$user" -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=off" start >/dev/null
  export DAGSTER_CARGO_TEST_PG_DSN="postgresql://cargo@127.0.0.1:$port/postgres"
  echo "== throwaway postgres $("$bin/postgres" --version) on 127.0.0.1:$port (data in $dir)"
}

stop_throwaway_postgres() {
  if [ -n "${PG_CI_DIR:-}" ] && [ -d "$PG_CI_DIR/data" ]; then
    runuser -u "$PG_CI_USER" -- "$PG_CI_BIN/pg_ctl" -D "$PG_CI_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_CI_DIR"
    echo "== throwaway postgres stopped"
  fi
}
