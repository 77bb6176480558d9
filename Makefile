# Gamify developer commands. `make run` and `make test` are the whole set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST := $(BIN)/python -m pytest

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install tools run test unit integration e2e lint bench compose-up compose-down clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# System tools the tests need beyond the venv: stunnel, the TLS proxy of the Kafka TLS tests.
# Idempotent: installs the Debian package only when no stunnel is on PATH.
tools:
	@command -v stunnel4 >/dev/null 2>&1 || command -v stunnel >/dev/null 2>&1 || { \
		command -v apt-get >/dev/null 2>&1 || { echo "make: install stunnel (TLS tests need it)" >&2; exit 1; }; \
		echo "make: installing stunnel4 (TLS proxy of the Kafka TLS tests)"; \
		$(SUDO) apt-get install -y -qq stunnel4 >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq stunnel4; }; }

run: install
	$(BIN)/gamify serve

test: install tools
	$(PYTEST) -q tests

unit: install
	$(PYTEST) -q tests/unit

integration: install tools
	$(PYTEST) -q -m integration tests

e2e: install
	$(PYTEST) -q tests/e2e

lint: install
	$(BIN)/ruff check services projections schemas tests

bench: install
	$(BIN)/python -m bench.run

compose-up:
	docker compose up -d

compose-down:
	docker compose down

clean:
	rm -rf $(VENV) data .pytest_cache
