# The README's two commands are `make demo` and `make test`; each sets everything up from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-deps demo test lint bench docs clean migration

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP) system-deps

# Debian packages the tests and benchmarks start themselves: PostgreSQL (run on a loopback port) and
# a Java runtime for Spark in local mode (the batch engine's portability test).
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v java >/dev/null 2>&1 || missing="$$missing openjdk-17-jre-headless"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: $(STAMP)
	$(BIN)/tenure demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

test: setup lint
	$(BIN)/python -m pytest -n 2 -q

bench: setup
	$(BIN)/python benchmarks/import_throughput.py
	$(BIN)/python benchmarks/signals_batch.py
	$(BIN)/python benchmarks/signals_incremental.py
	$(BIN)/python benchmarks/churn_training.py
	$(BIN)/python benchmarks/alerts_live.py

docs: $(STAMP)
	$(BIN)/python scripts/cli_reference.py

migration: $(STAMP)
	$(BIN)/python scripts/new_migration.py "$(MSG)"

clean:
	rm -rf $(VENV) demo-data tenure.db tenure.db-wal tenure.db-shm .pytest_cache .mypy_cache .ruff_cache
