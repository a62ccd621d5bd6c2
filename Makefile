# The two commands of the README.  Both create ./.venv and install the
# project into it first, so they work on a fresh machine with Python 3.11+,
# gcc and the Python headers (durable-rules builds from source).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run demo test lint bench check install loadbench screenshots admin-bench

$(BIN)/scoring: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/scoring

HOST ?= 127.0.0.1
PORT ?= 8000

# The service on its embedded default (SQLite in ./instance) with the seed schemes
# and demonstration units; prints the demo users' API tokens the first time.
run: install
	$(BIN)/scoring check
	$(BIN)/flask --app wsgi db-upgrade
	$(BIN)/python -m tools.demo
	$(BIN)/gunicorn --workers 2 --bind $(HOST):$(PORT) --access-logfile - wsgi:app

# Score every example unit on the command line, printing the explained scores.
demo: install
	@for f in examples/*.yaml; do id=$$(basename $$f .yaml); echo; echo "=== $$id"; $(BIN)/scoring score $$id $$f; done

# The whole test suite (what CI runs).  PostgreSQL: SCORING_TEST_POSTGRES_URL if set,
# else a local cluster started by .ci/postgres.sh where that can run (root, Debian);
# without either, the PostgreSQL half of the API tests is skipped (never in CI).
# Two pytest-xdist workers: the end-to-end tests mostly wait (servers starting, a browser,
# deadlines), so two at a time took the suite from 154 s to 108 s on a 2-core machine.
# Without the end-to-end tests (gunicorn, Chromium, SIGKILL): .venv/bin/python -m pytest -m "not e2e"
test: install
	SCORING_TEST_POSTGRES_URL="$${SCORING_TEST_POSTGRES_URL:-$$(bash .ci/postgres.sh 2>/dev/null || true)}" \
		$(BIN)/python -m pytest -q -n 2

# The lint gate (CI runs it before the tests): ruff lint and format, mypy on the core and the
# rule-file reader, and the import contracts of .importlinter (layers, a core without frameworks).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Scoring benchmark, with zen-engine and a plain-Python floor as contenders (the bench extra,
# installed here if missing).  AGAINST=REV: side by side with another git revision instead
# (e.g. make bench AGAINST=HEAD~1: three runs each, alternating, medians and ratios).
AGAINST ?=
bench: install
	$(BIN)/python -c 'import zen' 2>/dev/null || $(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m tools.bench $(if $(AGAINST),--against $(AGAINST))

# HTTP load benchmark: gunicorn on 127.0.0.1 in a temporary instance; what-if and
# submit-then-score at 10 and 50 clients (wrk if installed, else a Python client)
loadbench: install
	$(BIN)/python -m tools.loadbench

check: install
	$(BIN)/scoring check
	$(BIN)/scoring test

# Screenshots of every admin page (/admin) at 1366x768, in headless Chromium
# (Debian's: apt-get install chromium fonts-noto-cjk), into $(OUT).
OUT ?= screenshots
screenshots: install
	$(BIN)/python -m tools.screenshots $(OUT)

# Render time of every admin page for the largest seed scheme (target < 200 ms a page).
admin-bench: install
	$(BIN)/python -m tools.admin_bench
