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

.PHONY: install demo test docs
install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/python -m example_project

test: $(BIN)/.installed
	$(BIN)/python -m pytest

# The documentation site (mkdocs.yml, docs/) into site/; `.venv/bin/mkdocs serve` previews it live.
docs: $(BIN)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
