# Every target installs what it needs into .venv first, so a fresh clone needs only python3 and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit reference clients gen check-gen ts ts-skipped clean stress bench

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sessiond demo

lint: $(STAMP)
	$(BIN)/ruff check protocol engine daemon client cli tests stress bench
	$(BIN)/ruff format --check protocol engine daemon client cli tests stress bench

typecheck: $(STAMP)
	mkdir -p .typecheck/sessiond
	for d in protocol engine daemon client cli; do ln -sfn ../../$$d .typecheck/sessiond/$$d; done
	$(BIN)/mypy

# The fast suite: everything but the live reference checks (under 5 minutes on 2 cores).
unit: $(STAMP)
	$(BIN)/pytest -q -m "not reference and not clients and not stress"

# Live checks against the real OpenClaw 2026.5.12 at OPENCLAW_REF_DIR (skipped without it).
reference: $(STAMP)
	$(BIN)/pytest -q -m reference

# OpenClaw's own clients against sessiond: the real TUI in tmux, the real Control UI in headless
# Chromium (Debian's `chromium`); needs OPENCLAW_REF_DIR. Screens are printed (-rP); with
# SESSIOND_UPDATE_DOCS=1 the Control UI screenshot in docs/ is rewritten.
clients: $(STAMP)
	$(BIN)/pytest -q -rP -m clients tests/clients

# Generated files are committed: protocol/schema.json from the Structs, then both clients from it
# (the Python one goes through ruff inside the generator, so its output is stable), and
# docs/cli.md from the command line's argument parser.
gen: $(STAMP)
	$(BIN)/python -m sessiond.protocol.schema_export
	$(BIN)/python -m sessiond.client.codegen
	$(BIN)/python -m sessiond.cli.docs --write docs/cli.md

# Fails, with a diff, when a generated file is not what `make gen` would write now.
check-gen: $(STAMP)
	$(BIN)/python -m sessiond.protocol.schema_export --check
	$(BIN)/python -m sessiond.client.codegen --check
	$(BIN)/python -m sessiond.cli.docs --check docs/cli.md

# The TypeScript client under `tsc --noEmit --strict`, with the TypeScript pinned in its lockfile.
ts:
	cd client/typescript && npm ci --no-audit --no-fund --loglevel=error && npx tsc -p . --noEmit --strict

ts-skipped:
	@echo "ts: node and npm not found; the TypeScript client is not type-checked"

HAVE_NODE := $(shell command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && echo yes)

test: check-gen lint typecheck $(if $(HAVE_NODE),ts,ts-skipped) unit

clean:
	rm -rf $(VENV) build *.egg-info

# Crash, edit-race, fuzz, load, disk-fault and security runs (a few minutes on 2 cores).
stress: $(STAMP)
	$(BIN)/pytest -q -m stress
	PYTHONPATH=tests $(BIN)/python stress/run_all.py

# sessiond vs the reference OpenClaw at OPENCLAW_REF_DIR (default /work/ref): bench/out/report.md
bench: $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	PYTHONPATH=tests $(BIN)/python bench/report.py
