# Gamify developer commands. `make run` and `make test` are the whole set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST := $(BIN)/python -m pytest

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install tools run test unit integration e2e lint bench kafka-dev compose-up compose-down clean

# Three layers: what the service needs (`make run`), the tansu dev broker (`make kafka-dev`), and
# the test tools (`make test`, also `make install`). Each stamp file re-runs when pyproject changes.
install: $(VENV)/.installed

$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(BIN)/pip install -e '.[dev]'
	touch $@

$(VENV)/.installed: $(VENV)/.runtime
	$(BIN)/pip install -e '.[test]'
	touch $@

run: $(VENV)/.runtime
	$(BIN)/gamify serve

kafka-dev: $(VENV)/.dev
	$(BIN)/gamify dev-broker

# System tools the tests need beyond the venv: stunnel, the TLS proxy of the Kafka TLS tests.
# Idempotent: installs the Debian package only when no stunnel is on PATH.
tools:
	@command -v stunnel4 >/dev/null 2>&1 || command -v stunnel >/dev/null 2>&1 || { \
		command -v apt-get >/dev/null 2>&1 || { echo "make: install stunnel (TLS tests need it)" >&2; exit 1; }; \
		echo "make: installing stunnel4 (TLS proxy of the Kafka TLS tests)"; \
		$(SUDO) apt-get install -y -qq stunnel4 >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq stunnel4; }; }

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

.PHONY: openapi
openapi: install
	mkdir -p build
	$(BIN)/python -m services.api.openapi build/openapi.json

bench: install
	$(BIN)/python -m bench.run

compose-up:
	@docker info >/dev/null 2>&1 || { echo "make compose-up needs a running Docker engine (docker info failed). Without Docker, try the Kafka shape with 'make kafka-dev' (see README, Kafka without Docker)." >&2; exit 1; }
	docker compose up -d

compose-down:
	docker compose down

clean:
	rm -rf $(VENV) data .pytest_cache
