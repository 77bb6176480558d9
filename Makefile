# Gamify developer commands. `make run` and `make test` are the whole set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST := $(BIN)/python -m pytest

.PHONY: install run test unit integration e2e lint mutation bench compose-up compose-down clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: install
	$(BIN)/gamify serve

test: install
	$(PYTEST) -q tests

unit: install
	$(PYTEST) -q tests/unit

integration: install
	$(PYTEST) -q -m integration tests

e2e: install
	$(PYTEST) -q tests/e2e

lint: install
	$(BIN)/ruff check services projections schemas tests

# Mutation testing of the pure core against tests/unit (docs/mutation.md; not part of `make test`).
# MUTANTS narrows the run to some mutants, e.g. MUTANTS='schemas.codec.*'. Results persist in
# mutants/ (a later run re-tests only what changed); `rm -rf mutants` starts afresh.
MUTANTS ?=
mutation: install
	$(BIN)/pip install --quiet -e '.[mutation]'
	$(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/python -m tests.mutation_report

bench: install
	$(BIN)/python -m bench.run

compose-up:
	docker compose up -d

compose-down:
	docker compose down

clean:
	rm -rf $(VENV) data .pytest_cache mutants
