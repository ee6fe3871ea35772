# anpr-stream: every target does its own set-up (venv, install, local Kafka + PostgreSQL) on a fresh machine.
# Settings in the environment win: with ANPR_KAFKA_BOOTSTRAP / ANPR_DATABASE_URL set, nothing local is started.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: help venv tools infra infra-down infra-status check lint typecheck test test-unit demo bench clean

help:
	@echo "make demo        run the service on a recorded sample of the zone's traffic"
	@echo "make test        venv, install, lint + types, local Kafka + PostgreSQL, the whole test suite"
	@echo "make infra       start local Kafka + PostgreSQL + mosquitto; eval \"\$$(make -s infra)\" exports the settings"
	@echo "make infra-down  stop them (data stays in .local/)"
	@echo "make check       ruff + mypy only"
	@echo "make bench       benchmark report: worker vs raw aiokafka loop vs per-event faust agent (~4 min)"

venv: $(STAMP)

# The native twin of the read-decoding core (native/, Rust): built from source here, so cargo is needed; the package
# itself stays pure Python and falls back to its reference without it (anpr_stream/core/accel.py).
$(STAMP): pyproject.toml native/pyproject.toml native/Cargo.toml native/Cargo.lock $(wildcard native/src/*.rs)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet ./native
	@touch $@

infra: venv
	@$(BIN)/anpr-stream infra up

infra-down: venv
	@$(BIN)/anpr-stream infra down

infra-status: venv
	@$(BIN)/anpr-stream infra status

lint: venv
	$(BIN)/ruff check anpr_stream tests benchmarks
	$(BIN)/ruff format --check anpr_stream tests benchmarks

typecheck: venv
	$(BIN)/mypy

check: lint typecheck

# Third-party programs the tests drive: kcat, chromium for the dispatch console's browser test, and the mosquitto
# broker (with mosquitto_passwd) for the gateway's MQTT tests; Debian packages, installed when missing on Debian as
# root.
TOOLS := kcat:kcat chromium:chromium mosquitto:mosquitto mosquitto_passwd:mosquitto

tools:
	@for tool in $(TOOLS); do \
	  cmd=$${tool%%:*}; pkg=$${tool#*:}; \
	  command -v $$cmd >/dev/null 2>&1 && continue; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $$pkg (apt-get)" >&2; \
	    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$pkg >/dev/null; \
	  else echo "$$cmd is missing (apt-get install $$pkg): its test will be skipped" >&2; fi; \
	done

# The suite starts (or attaches to) the local infrastructure itself when the settings are unset (tests/conftest.py).
# ANPR_EXPECT_NATIVE=1: a suite that silently ran on the reference alone would not have tested the native core.
test: check tools
	ANPR_EXPECT_NATIVE=1 $(BIN)/pytest $(PYTEST_ARGS)

test-unit: venv
	ANPR_EXPECT_NATIVE=1 $(BIN)/pytest tests/unit $(PYTEST_ARGS)

# DEMO_ARGS=--keep-running leaves the worker up after the summary.
demo: venv
	$(BIN)/anpr-stream demo $(DEMO_ARGS)

# The benchmark report: benchmarks/results/report.{md,json} + PNG plots, copied to benchmarks/latest/ (~4 min).
bench: venv
	@$(BIN)/python -c "import matplotlib, faust" 2>/dev/null || $(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/bench_report.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
