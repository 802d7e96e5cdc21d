# Two commands set up a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
RUST_SRC := $(shell find rust -name '*.rs' -o -name Cargo.toml 2>/dev/null) Cargo.toml Cargo.lock

.PHONY: install run test lint rust-check pytest bench peers doctor clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Dependencies and an editable install of the project (builds the extension once).
$(VENV)/.deps: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(VENV)/.deps $(VENV)/.native

# Rebuild the Rust extension when its sources change.
$(VENV)/.native: $(VENV)/.deps $(RUST_SRC)
	$(BIN)/maturin develop --release -q
	touch $@

install: $(VENV)/.native

# uvicorn trusts forwarded headers only from the proxies we trust (none by default).
run: install
	FORWARDED_ALLOW_IPS="$${HFT_TRUSTED_PROXIES:-}" $(BIN)/streamlit run app.py --server.address=127.0.0.1 --server.port=$(PORT) \
		--server.headless=true --browser.gatherUsageStats=false

system-deps:
	bash scripts/system-deps.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m mypy.stubtest core._native

rust-check:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -q -- -D warnings
	cargo test --workspace -q

# One BLAS thread: the peers' small-matrix numpy/statsmodels calls slow down 10-100x when
# OpenBLAS threads fight over two cores, and results do not depend on it.
pytest: install system-deps
	OPENBLAS_NUM_THREADS=$${OPENBLAS_NUM_THREADS:-1} OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest

test: install system-deps lint rust-check pytest

# Benchmark peers whose pins clash with the project's (ArcticDB needs pandas<3) get their own
# venv, created once; if that fails the store report says ArcticDB was not measured.
PEERS := .venv-peers
$(PEERS)/.deps: benchmarks/peers-requirements.txt
	@rm -f $(PEERS)/.failed
	( $(PYTHON) -m venv $(PEERS) && $(PEERS)/bin/python -m pip install -q --upgrade pip \
	  && $(PEERS)/bin/python -m pip install -q -r benchmarks/peers-requirements.txt && touch $@ ) \
	|| { mkdir -p $(PEERS); echo "pip install -r benchmarks/peers-requirements.txt failed" \
	  > $(PEERS)/.failed; echo "WARNING: no peer venv, ArcticDB will not be measured" >&2; }

peers: $(PEERS)/.deps

bench: install peers
	$(BIN)/python -m benchmarks

doctor: install
	$(BIN)/hfthot doctor

clean:
	rm -rf $(VENV) .venv-peers target core/_native*.so
