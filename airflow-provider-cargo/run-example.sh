#!/usr/bin/env bash
# Run one example DAG end to end with `airflow dags test`, against a Cargo emulator on loopback:
#
#   airflow-provider-cargo/run-example.sh [dag_id]     (default: cargo_scheduled_tool_enrichment)
#
# It makes sure .venv-airflow exists (run-tests.sh --install-only), starts `cargo-emulator serve` on a free
# port, gives Airflow a throw-away AIRFLOW_HOME (SQLite) whose DAGs folder is example_dags/, and passes the
# connection as the environment variable AIRFLOW_CONN_CARGO_DEFAULT. The token is made up here and only ever
# travels in environment variables, never on a command line. Everything is removed on exit.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DAG_ID="${1:-cargo_scheduled_tool_enrichment}"
"$HERE/run-tests.sh" --install-only
BIN="${AIRFLOW_VENV:-$ROOT/.venv-airflow}/bin"

WORK="$(mktemp -d -t cargo-airflow-example-XXXXXX)"
EMULATOR_PID=""
cleanup() {
  [[ -n "$EMULATOR_PID" ]] && kill "$EMULATOR_PID" 2>/dev/null && wait "$EMULATOR_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

export CARGO_EMULATOR_TOKEN="$("$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(24))')"
PORT="$("$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$BIN/cargo-emulator" serve --port "$PORT" --speed 50 --run-failure-rate 0.1 --seed 7 > "$WORK/emulator.log" 2>&1 &
EMULATOR_PID=$!
for _ in $(seq 1 100); do
  "$BIN/python" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null && break
  sleep 0.1
done

export AIRFLOW_HOME="$WORK/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$HERE/example_dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW_CONN_CARGO_DEFAULT="$("$BIN/python" -c '
import json, os, sys
print(json.dumps({"conn_type": "cargo", "password": os.environ["CARGO_EMULATOR_TOKEN"],
                  "host": "http://127.0.0.1:" + sys.argv[1], "extra": {"poll_interval": 2}}))' "$PORT")"

"$BIN/airflow" db migrate > "$WORK/migrate.log" 2>&1
"$BIN/airflow" dags test "$DAG_ID"

# what the run left: the XCom summary of each Cargo task (the Parquet file it names is in $WORK, removed on exit)
"$BIN/python" - "$AIRFLOW_HOME/airflow.db" "$DAG_ID" <<'PY'
import json, sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute(
    "select task_id, value from xcom where dag_id=? and key='return_value'", (sys.argv[2],)).fetchall()
summaries = [(t, json.loads(v)) for t, v in rows if isinstance(v, str) and "credits_total" in v]
for task_id, summary in summaries:
    print(f"{task_id}: {json.dumps(summary, indent=2)}")
sys.exit(0 if summaries else "no Cargo task summary found: the DAG run did not complete")
PY
