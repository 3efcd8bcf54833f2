# The two quick-start commands are `make demo` and `make test`; .ci/run calls `make test`.
#
# Everything runs in the project's own virtualenv (.venv), made on first use and filled
# with exactly what uv.lock pins; the system Python is never installed into.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
UV := $(BIN)/uv
BOOTSTRAP_PYTHON ?= python3
PYTEST_ARGS ?=
# pytest-xdist workers for the first pass (0: in this process). Three on two cores:
# much of the suite waits on subprocesses, Docker and Redis. tests/conftest.py says
# which modules share a worker.
PYTEST_WORKERS ?= 3
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo 'docker compose' || echo docker-compose)
# uv works on $(VENV) only, with the interpreter that made it, never a downloaded one.
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never

.PHONY: install lock upgrade check-lock services images lint typecheck test pytest demo docs bench \
	compose-wheels compose-images durations

# uv itself comes from the lock too, checked by its hashes.
$(UV):
	$(BOOTSTRAP_PYTHON) -m venv $(VENV)
	$(BOOTSTRAP_PYTHON) scripts/lockfile.py pin uv > $(VENV)/uv-requirement.txt
	$(BIN)/pip install -q --require-hashes --no-deps -r $(VENV)/uv-requirement.txt

check-lock: $(UV)
	@$(UV) lock --check --offline -q 2>/dev/null || { \
	  echo "uv.lock does not match pyproject.toml: run 'make lock' and commit uv.lock" >&2; exit 1; }

# Exactly the lock: what is missing is installed, what is not locked is removed. The
# libraries, and the project's own packages (installed editable, so uv leaves them), are
# compiled to bytecode once here: the suite starts hundreds of `agents` processes, and
# where PYTHONDONTWRITEBYTECODE is set each would compile them again.
install: check-lock
	$(UV) sync --locked --compile-bytecode -q
	$(PYTHON) -m compileall -q process runs sandboxes jobs bot cli fakes tests >/dev/null

# Refresh uv.lock after changing pyproject.toml; `make upgrade` moves every pin forward.
lock: $(UV)
	$(UV) lock

upgrade: $(UV)
	$(UV) lock --upgrade

services:
	bash scripts/services.sh

# The default sandbox, the egress proxy, and the Node and Go images the docs' examples run in
# (their test: tests/blueprint/test_setup_egress_docker.py); each only when out of date.
images: install services
	$(BIN)/agents sandbox build --offline-base sandbox egress node go

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# The modules that hold `serial` tests: the second pass collects only those (collecting
# the whole suite to pick 30 tests takes seconds), unless PYTEST_ARGS names what to run.
SERIAL_MODULES = $(if $(PYTEST_ARGS),,$(shell grep -rl --include='test_*.py' 'mark.serial' tests))

# The installed versions must be the lock's, and the suite must leave them as they were;
# then docs/reliability.md from the figures the reliability tests just measured. Tests
# run on $(PYTEST_WORKERS) workers, then those marked `serial` alone (exit 5: none chosen).
pytest: install
	$(UV) sync --locked --check -q
	$(UV) pip freeze --python $(PYTHON) > $(VENV)/freeze-before.txt
	@status=0; \
	AGENTS_REQUIRE_SERVICES=1 $(PYTHON) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup \
	  -m "not serial" --junitxml=$(VENV)/junit.xml $(PYTEST_ARGS) || status=$$?; \
	AGENTS_REQUIRE_SERVICES=1 $(PYTHON) -m pytest -m serial $(SERIAL_MODULES) $(PYTEST_ARGS) || \
	  { s=$$?; [ $$s -eq 5 ] || status=$$s; }; \
	exit $$status
	$(UV) pip freeze --python $(PYTHON) > $(VENV)/freeze-after.txt
	@diff -u $(VENV)/freeze-before.txt $(VENV)/freeze-after.txt || { \
	  echo "the test run changed $(VENV): a test installed into it" >&2; exit 1; }
	$(PYTHON) -m tests.reliability.report

# The order pytest-xdist hands test modules out in (longest first) comes from
# tests/durations.json; this refreshes it from the last `make pytest`.
durations:
	$(PYTHON) -m tests.scheduling $(VENV)/junit.xml

# The whole suite on a fresh machine: dependencies, services, images, lint, types, tests.
test: install services images lint typecheck pytest

# Regenerate the README settings table and .env.example from the settings classes.
docs: install
	$(BIN)/agents config --write

# Mention -> PR -> approve on embedded defaults, printed as the Slack thread would show it.
demo: install
	$(BIN)/agents demo --headless

# Every benchmark against its baseline in the same run; writes docs/benchmarks.md.
# Needs Redis and Docker with the sandbox image (`make services images`); ~5-10 min.
bench: install
	$(PYTHON) -m bench

# Wheels for the compose images, downloaded here from the lock, for engines whose
# containers reach no package index.
compose-wheels: install
	PATH=$(abspath $(BIN)):$$PATH sh deploy/build-wheels.sh

# The compose images from the offline base (agents-base:bookworm, `make images`).
compose-images: compose-wheels
	AGENTS_BASE=agents-base:bookworm SLACK_BOT_TOKEN=unused ANTHROPIC_API_KEY=unused \
	GITHUB_TOKEN=unused $(COMPOSE) --profile dashboard build
