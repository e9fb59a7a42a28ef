# Every target installs what it needs into .venv first, so a fresh clone needs only python3 and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit gen clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sessiond demo

lint: $(STAMP)
	$(BIN)/ruff check daemon protocol client tests
	$(BIN)/ruff format --check daemon protocol client tests

typecheck: $(STAMP)
	mkdir -p .typecheck/sessiond
	for d in daemon protocol client; do ln -sfn ../../$$d .typecheck/sessiond/$$d; done
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit

clean:
	rm -rf $(VENV) build *.egg-info
