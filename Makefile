# Two commands set up a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSTEM_PACKAGES := prometheus prometheus-alertmanager chromium redis-server
LINTED := cxmetrics tests benchmarks examples

.PHONY: demo test test-fast bench lint install sysdeps clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

install: $(STAMP)

# Real Prometheus, promtool, Alertmanager, Chromium and Redis for the tests (Debian packages).
sysdeps:
	@if command -v prometheus >/dev/null && command -v promtool >/dev/null \
	    && command -v prometheus-alertmanager >/dev/null && command -v chromium >/dev/null \
	    && command -v redis-server >/dev/null; then :; \
	else \
	    echo "installing $(SYSTEM_PACKAGES) from Debian"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $$SUDO apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null; \
	fi

demo: $(STAMP)
	$(VENV)/bin/cxmetrics demo

# pytest's own exit code: "no tests collected" (5) is a failure, like any other non-zero code.
# Two parallel workers (one per core of the CI machine; most tests wait on servers): a module is
# one unit, the xdist_group("timing") tests run one after another on one worker and start first
# (tests/helpers/scheduling.py). Then the `alone` tests, which load every core on purpose; they
# run whatever the first part gave, and make test fails when either part failed.
# TEST_WORKERS=0: everything in one process, one test after another.
TEST_WORKERS ?= 2
test: $(STAMP) sysdeps
	status=0; \
	$(PY) -m pytest -q -p no:cacheprovider --durations=15 -m "not alone" \
	    -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder || status=$$?; \
	$(PY) -m pytest -q -p no:cacheprovider --durations=5 -m alone || status=$$?; \
	exit $$status

# The edit loop: everything that starts no server or subprocess (under a minute).
test-fast: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

bench: $(STAMP)
	@command -v wrk >/dev/null && command -v perf >/dev/null || { \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get install -y -qq --no-install-recommends wrk linux-perf >/dev/null; }
	@set -e; for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b; done

# The same checks as .pre-commit-config.yaml, with the versions pinned in pyproject's dev extra.
lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy --strict $(LINTED)

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache
