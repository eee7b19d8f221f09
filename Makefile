# Two entry points (see README "Quickstart"): `make demo` and `make test`.
# Both create .venv on first use from this repo's own pyproject.toml, so a fresh
# machine with Python 3.10+ and Node.js needs nothing else.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

# The distributions of this repo, installed editable into one venv (plain pip, no workspace tool: pip
# resolves each by-name dependency between them to the folder given on the same command line).
DISTS := -e ./cargo-gtm-client -e ./cargo-gtm-emulator -e '.[test,dev,arrow]' -e ./fault-suite

$(BIN)/.installed: pyproject.toml cargo-gtm-client/pyproject.toml cargo-gtm-emulator/pyproject.toml fault-suite/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(DISTS)
	touch $@

.PHONY: install demo demo-airflow test docs
install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/python -m example_project

# Every test of every distribution: the Airflow provider's venv first (.venv-airflow, no Dagster in it; the docs'
# Airflow example runs there), then the core, emulator, Dagster layer and docs, then the provider's own suite.
test: $(BIN)/.installed
	bash airflow-provider-cargo/run-tests.sh --install-only
	$(BIN)/python -m pytest
	bash airflow-provider-cargo/run-tests.sh

# An example DAG end to end against the emulator with `airflow dags test` (docs/airflow/index.md).
demo-airflow:
	bash airflow-provider-cargo/run-example.sh cargo_scheduled_tool_enrichment

# The documentation site (mkdocs.yml, docs/) into site/; `.venv/bin/mkdocs serve` previews it live.
docs: $(BIN)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
