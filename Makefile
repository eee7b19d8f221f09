# Two entry points (see README "Quickstart"): `make demo` and `make test`.
# Both create .venv on first use from this repo's own pyproject.toml, so a fresh
# machine with Python 3.10+ and Node.js needs nothing else.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev,arrow]'
	touch $@

.PHONY: install demo test
install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/python -m example_project

test: $(BIN)/.installed
	$(BIN)/python -m pytest
