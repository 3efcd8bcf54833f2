# The two quick-start commands are `make demo` and `make test`; .ci/run calls `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
PYTEST_ARGS ?=

.PHONY: install services images lint typecheck test pytest demo docs

install:
	$(PIP) install -q -e '.[dev]'

services:
	bash scripts/services.sh

images: install services
	agents sandbox build --offline-base

lint: install
	ruff check .
	ruff format --check .

typecheck: install
	mypy

pytest:
	AGENTS_REQUIRE_SERVICES=1 $(PYTHON) -m pytest -v $(PYTEST_ARGS)

# The whole suite on a fresh machine: dependencies, services, images, lint, types, tests.
test: install services images lint typecheck pytest

# Regenerate the README settings table and .env.example from the settings classes.
docs: install
	agents config --write

# Mention -> PR -> approve on embedded defaults, printed as the Slack thread would show it.
demo: install
	agents demo --headless
