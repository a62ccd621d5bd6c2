# The two commands of the README.  Both create ./.venv and install the
# project into it first, so they work on a fresh machine with Python 3.11+,
# gcc and the Python headers (durable-rules builds from source).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test bench check install

$(BIN)/scoring: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/scoring

# Check the shipped rules and score every example unit, printing the explained scores.
run: install
	$(BIN)/scoring check
	@for f in examples/*.yaml; do id=$$(basename $$f .yaml); echo; echo "=== $$id"; $(BIN)/scoring score $$id $$f; done

# The whole test suite (what CI runs).
test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/scoring bench

check: install
	$(BIN)/scoring check
	$(BIN)/scoring test
