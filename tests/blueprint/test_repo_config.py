"""``.agents.yml``: strict parsing, clear messages, and check detection."""

from __future__ import annotations

import pytest

from jobs.repo_config import JUNIT_DIR, detect_checks, parse_repo_config, resolve
from process.exceptions import RepoConfigError


def test_no_file_means_safe_defaults() -> None:
    config = parse_repo_config(None)
    assert config.checks == []
    assert config.setup == []
    assert (config.network.setup, config.network.agent, config.network.checks) == (
        False,
        False,
        False,
    )
    assert config.protected_paths == []
    assert config.fix_rounds == 2


def test_full_config() -> None:
    config = parse_repo_config(
        """
setup: pip install -e .
checks:
  - name: unit
    run: pytest -q --junitxml=/tmp/agents-checks/unit.xml
    junit: /tmp/agents-checks/unit.xml
    timeout: 300
  - ruff check .
image: ghcr.io/acme/ci:3
network: {setup: true}
limits: {max_turns: 25, memory: 4G, cpus: 2, pids: 256}
fix_rounds: 3
escalation: stop
"""
    )
    assert config.setup == ["pip install -e ."]
    assert [(c.name, c.timeout) for c in config.checks] == [("unit", 300), ("ruff check", 900)]
    assert config.checks[0].junit == "/tmp/agents-checks/unit.xml"
    assert config.image == "ghcr.io/acme/ci:3"
    assert config.network.setup
    assert not config.network.checks
    assert config.limits.memory == "4g"
    assert (config.fix_rounds, config.escalation) == (3, "stop")


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("python -m pytest -q", "pytest"),
        ("go vet ./...", "go vet"),
        ("npx tsc --noEmit", "npx tsc"),
        ("npm run lint", "npm run lint"),
        ("uv run --frozen mypy src", "uv run mypy"),
        ("bundle exec rspec spec/models", "bundle exec rspec"),
    ],
)
def test_a_check_without_a_name_is_named_by_what_it_runs(command: str, name: str) -> None:
    [check] = parse_repo_config(f"checks: [{command!r}]\n").checks
    assert check.name == name


def test_checks_named_alike_by_their_commands_get_names_of_their_own() -> None:
    config = parse_repo_config(
        "checks:\n  - cargo test -p core\n  - cargo test -p cli\n"
        "  - {name: 'cargo test #3', run: cargo test --doc}\n  - cargo test -p web\n"
    )
    assert [c.name for c in config.checks] == [
        "cargo test",
        "cargo test #2",
        "cargo test #3",
        "cargo test #4",
    ]


def test_a_junit_path_that_climbs_out_is_refused() -> None:
    text = "checks:\n  - {name: t, run: pytest, junit: /tmp/agents-checks/../../home/x.xml}\n"
    with pytest.raises(RepoConfigError, match="junit"):
        parse_repo_config(text)
    inside = parse_repo_config("checks:\n  - {name: t, run: pytest, junit: reports/a..b.xml}\n")
    assert inside.checks[0].junit == "reports/a..b.xml"


def test_network_true_means_setup_only() -> None:
    config = parse_repo_config("network: true")
    assert config.network.setup
    assert not config.network.agent
    assert not config.network.checks


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("chekcs: [pytest]", "unknown key `chekcs` (allowed here: setup, checks, image"),
        (
            "network: {setup: true, egress: 1}",
            "unknown key `network.egress` (allowed here: setup, agent, checks, allow)",
        ),
        ("checks: 5", "`checks`: input should be a valid list (got 5)"),
        ("limits: {memory: lots}", "`limits.memory`: expected a size like 512m or 4g"),
        ("fix_rounds: -1", "`fix_rounds`: input should be greater than or equal to 0"),
        ("escalation: panic", "`escalation`: input should be 'draft' or 'stop'"),
        ("checks: [{name: x}]", "`checks.0.run`: field required"),
        ("a: [1", "is not valid YAML at line 1, column 6"),
        ("- just a list", "must be a mapping of settings"),
    ],
)
def test_bad_config_gets_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(RepoConfigError) as err:
        parse_repo_config(text)
    assert str(err.value).startswith(".agents.yml")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_several_problems_are_counted() -> None:
    with pytest.raises(RepoConfigError, match=r"and 1 more problem$"):
        parse_repo_config("foo: 1\nbar: 2")


def test_oversized_config_is_refused() -> None:
    with pytest.raises(RepoConfigError, match="over the 64 KiB limit"):
        parse_repo_config("setup: " + "x" * 70_000)


def files(mapping: dict[str, str]) -> tuple[object, object]:
    def exists(path: str) -> bool:
        return path in mapping

    def read(path: str) -> str | None:
        return mapping.get(path)

    return exists, read


@pytest.mark.parametrize(
    ("tree", "expected"),
    [
        ({"pyproject.toml": "[tool.pytest.ini_options]\n"}, "pytest"),
        ({"pytest.ini": ""}, "pytest"),
        ({"setup.py": "", "tests": ""}, "pytest"),
        ({"tox.ini": "[tox]"}, "tox"),
        ({"package.json": '{"scripts": {"test": "jest"}}'}, "npm test"),
        ({"go.mod": "module x"}, "go test"),
        ({"Makefile": "build:\n\tcc x.c\ntest: build\n\t./x\n"}, "make test"),
    ],
)
def test_checks_are_detected(tree: dict[str, str], expected: str) -> None:
    exists, read = files(tree)
    detected = detect_checks(exists, read)  # type: ignore[arg-type]
    assert [c.name for c in detected] == [expected]


def test_pytest_detection_writes_junit_outside_the_workspace() -> None:
    exists, read = files({"pytest.ini": ""})
    (check,) = detect_checks(exists, read)  # type: ignore[arg-type]
    assert check.junit is not None
    assert check.junit.startswith(JUNIT_DIR)
    assert f"--junitxml={check.junit}" in check.run


@pytest.mark.parametrize(
    "tree",
    [
        {},
        {"package.json": '{"scripts": {"test": "echo \\"Error: no test specified\\" && exit 1"}}'},
        {"package.json": "not json"},
        {"Makefile": "build:\n\tcc x.c\n"},
    ],
)
def test_nothing_detected(tree: dict[str, str]) -> None:
    exists, read = files(tree)
    assert detect_checks(exists, read) == []  # type: ignore[arg-type]


def test_resolve_prefers_configured_checks() -> None:
    exists, read = files({"pytest.ini": ""})
    configured = resolve("checks: make lint", exists, read)  # type: ignore[arg-type]
    assert [c.run for c in configured.checks] == ["make lint"]
    assert not configured.detected
    detected = resolve(None, exists, read)  # type: ignore[arg-type]
    assert detected.detected
    assert detected.checks[0].name == "pytest"


def test_shared_memory_is_opt_in() -> None:
    from jobs.blueprint.sandbox import sandbox_config
    from sandboxes.config import SandboxConfig

    assert sandbox_config(SandboxConfig(), parse_repo_config(None)).shm_size_mb == 0
    assert (
        sandbox_config(SandboxConfig(), parse_repo_config("limits: {shm: 64m}")).shm_size_mb == 64
    )


def test_a_repository_can_only_tighten_the_workers_limits() -> None:
    from jobs.blueprint.sandbox import sandbox_config
    from sandboxes.config import SandboxConfig

    base = SandboxConfig(memory_mb=2048, cpus=1.0, pids=256, command_timeout=600)
    greedy = parse_repo_config(
        "limits: {memory: 64g, cpus: 32, pids: 60000, command_timeout: 20000}"
    )
    config = sandbox_config(base, greedy)
    assert (config.memory_mb, config.cpus, config.pids, config.command_timeout) == (
        2048,
        1.0,
        256,
        600,
    )
    modest = sandbox_config(base, parse_repo_config("limits: {memory: 1g, cpus: 0.5, pids: 128}"))
    assert (modest.memory_mb, modest.cpus, modest.pids) == (1024, 0.5, 128)


def test_an_alias_bomb_is_refused_before_anything_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bounds are checked on YAML's event stream: a bomb never reaches the composer,
    so nothing in the worker (nor its run's heartbeat) waits on it."""

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the document was built")

    monkeypatch.setattr("jobs.repo_config.yaml.safe_load", never)
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    with pytest.raises(RepoConfigError, match="more than 10,000 values once its aliases"):
        parse_repo_config("\n".join(lines) + "\nchecks: *a9\n")
    with pytest.raises(RepoConfigError, match="nests deeper than 20 levels"):
        parse_repo_config("checks: " + "[" * 20_000 + "]" * 20_000)
