# make run   — a working idp on http://127.0.0.1:5000 with a demo tenant, client and user
# make test  — everything the tests need, then the whole suite on SQLite and on PostgreSQL
# make bench — load benchmarks (bench/)
# Each target bootstraps .venv itself; nothing needs installing by hand.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PEERS  := tests/peers/node_modules/.installed-$(shell cat tests/peers/package-lock.json 2>/dev/null | cksum | cut -d' ' -f1)
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider
# The browser tests (tests/e2e) drive Debian's chromium through Playwright. Playwright's own
# `playwright install` downloads a browser build, which fails where only package registries
# are reachable, so the distribution's package is installed instead (we run as root).
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint test-sqlite test-postgres peers chromium bench clean

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/pybabel compile -d idp/translations
	rm -f $(VENV)/.installed-*
	touch $@

$(PEERS):
	cd tests/peers && npm ci --no-audit --no-fund --loglevel=error
	rm -f tests/peers/node_modules/.installed-*
	touch $@

peers: $(PEERS)

# A file target: a no-op once chromium is installed.
$(CHROMIUM):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

chromium: $(CHROMIUM)

run: $(STAMP)
	IDP_ENV=development $(BIN)/idp init --demo
	IDP_ENV=development $(BIN)/flask --app wsgi run --host 127.0.0.1 --port 5000

lint: $(STAMP)
	$(BIN)/ruff check idp tests wsgi.py

test: $(STAMP) peers chromium lint test-sqlite test-postgres

# Only the SQLite pass runs the browser journey; the PostgreSQL pass skips it.
test-sqlite: $(STAMP) peers chromium
	IDP_TEST_DB=sqlite $(PYTEST)

test-postgres: $(STAMP) peers
	IDP_TEST_DB=postgresql $(PYTEST)

# wrk comes from Debian (bench/run.py installs it when missing); py-spy, for
# bench/profiling.py, from bench/requirements.txt. BENCH_ARGS passes options to run.py.
bench: $(STAMP) peers
	$(BIN)/python -m pip install -q -r bench/requirements.txt
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) tests/peers/node_modules instance
