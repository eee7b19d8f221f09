#!/usr/bin/env bash
# The Airflow provider's tests in a venv of their own (.venv-airflow at the repo root), installed from this
# repository's files only: the core and the emulator from their folders, the provider with its test and
# openlineage extras. Nothing of dagster-cargo is installed, so the suite also shows that the provider needs
# no Dagster.
#
#   airflow-provider-cargo/run-tests.sh [pytest args...]     (default: the whole provider suite)
#   airflow-provider-cargo/run-tests.sh --install-only       (just make sure the venv is there)
#
# The venv is reused while the three pyproject.toml files are unchanged (a stamp records their hash), so a
# second run starts testing at once. PYTHON picks the interpreter (default python3, >= 3.10).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
VENV="${AIRFLOW_VENV:-$ROOT/.venv-airflow}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.cargo-provider-installed"
want="$(cat "$ROOT/cargo-gtm-client/pyproject.toml" "$ROOT/cargo-gtm-emulator/pyproject.toml" \
        "$HERE/pyproject.toml" | sha256sum | cut -d' ' -f1)"

if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$want" ]]; then
  start=$(date +%s)
  rm -rf "$VENV"
  export PIP_NO_COMPILE=1 PIP_DISABLE_PIP_VERSION_CHECK=1  # no .pyc pass over Airflow's ~150 packages: minutes on 2 cores
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  # one resolver run: each by-name dependency between the distributions resolves to the folder given here
  "$VENV/bin/pip" install --quiet -e "$ROOT/cargo-gtm-client" -e "$ROOT/cargo-gtm-emulator" \
      -e "$HERE[test,openlineage]"
  echo "$want" > "$STAMP"
  echo "run-tests.sh: installed $VENV in $(( $(date +%s) - start ))s"
fi

[[ "${1:-}" == "--install-only" ]] && exit 0
cd "$HERE"
exec "$VENV/bin/python" -m pytest -p no:cacheprovider "${@:-tests}"
