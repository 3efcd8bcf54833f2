# The two quick-start commands are `make demo` and `make test`; .ci/run calls `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
PYTEST_ARGS ?=
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo 'docker compose' || echo docker-compose)

.PHONY: install services images lint typecheck test pytest demo docs bench compose-wheels compose-images

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

# Then docs/reliability.md from the figures the reliability tests just measured.
pytest:
	AGENTS_REQUIRE_SERVICES=1 $(PYTHON) -m pytest -v $(PYTEST_ARGS)
	$(PYTHON) -m tests.reliability.report

# The whole suite on a fresh machine: dependencies, services, images, lint, types, tests.
test: install services images lint typecheck pytest

# Regenerate the README settings table and .env.example from the settings classes.
docs: install
	agents config --write

# Mention -> PR -> approve on embedded defaults, printed as the Slack thread would show it.
demo: install
	agents demo --headless

# Every benchmark against its baseline in the same run; writes docs/benchmarks.md.
# Needs Redis and Docker with the sandbox image (`make services images`); ~5-10 min.
bench: install
	$(PYTHON) -m bench

# Wheels for the compose images, built here, for engines whose containers reach no index.
compose-wheels:
	sh deploy/build-wheels.sh

# The compose images from the offline base (agents-base:bookworm, `make images`).
compose-images: compose-wheels
	AGENTS_BASE=agents-base:bookworm SLACK_BOT_TOKEN=unused ANTHROPIC_API_KEY=unused \
	GITHUB_TOKEN=unused $(COMPOSE) --profile dashboard build
