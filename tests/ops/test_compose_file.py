"""What docker-compose.yml and the Procfile promise, read from the files themselves.

The running stack is tested in test_compose_stack.py; these checks are fast and say
which line is wrong.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.main import build_parser
from process import settings
from tests.ops.compose import COMPOSE_FILE, ROOT, compose_command

SECRETS = {
    "bot": {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "GITHUB_WEBHOOK_SECRET"},
    "worker": {"ANTHROPIC_API_KEY", "GITHUB_TOKEN", "AGENTS_GITHUB_APP_PRIVATE_KEY"},
}
REQUIRED = {"bot": ["SLACK_BOT_TOKEN"], "worker": ["ANTHROPIC_API_KEY"]}
#: One of GITHUB_TOKEN or a GitHub App: compose cannot say "one of", the worker checks.
EITHER = {"worker": "GITHUB_TOKEN"}
#: Set by the compose file itself, the same in every deployment.
FIXED = {"REDIS_URL", "AGENTS_BOT_PORT"}
SOCKET = "/var/run/docker.sock"
#: The worker's Docker client settings, for sandboxes on another engine.
DOCKER_CLIENT = {"DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def env_names(cls: type[settings.CommonSettings]) -> set[str]:
    return {settings.env_name(name, field) for name, field in cls.model_fields.items()}


def test_the_procfile_runs_the_bot_and_the_worker_through_the_real_cli() -> None:
    entries = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    assert set(entries) == {"bot", "worker"}
    for name, command in entries.items():
        argv = shlex.split(command)
        assert argv[0] == "agents"
        args = build_parser().parse_args(argv[1:])
        assert args.command == name
        assert callable(args.func)


def test_only_the_worker_gets_the_docker_socket_and_it_can_scale() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", "bot", "worker", "rq-dashboard", "egress-proxy"}
    with_socket = {
        name for name, spec in services.items() if any(SOCKET in v for v in spec.get("volumes", []))
    }
    assert with_socket == {"worker"}
    worker = services["worker"]
    # --scale worker=N needs no fixed name and no fixed host port.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert services["rq-dashboard"]["profiles"] == ["dashboard"]


def test_the_egress_proxy_sits_alone_on_its_network_with_nothing_secret() -> None:
    spec = compose()
    proxy = spec["services"]["egress-proxy"]
    assert proxy["networks"] == ["egress"]
    # Named from the worker's own setting, so the worker and compose agree on it.
    assert spec["networks"]["egress"]["name"] == "${AGENTS_EGRESS_NETWORK:-agents-egress}"
    assert "AGENTS_EGRESS_NETWORK" in spec["services"]["worker"]["environment"]
    assert proxy["labels"]["agents.egress.proxy"] == "compose"
    assert proxy["read_only"] is True
    assert proxy["cap_drop"] == ["ALL"]
    assert set(proxy["environment"]) == {"AGENTS_EGRESS_DENY"}
    # No other service shares its network: a sandbox's way out leads to the proxy only.
    for name, service in spec["services"].items():
        if name != "egress-proxy":
            assert "egress" not in (service.get("networks") or []), name


def test_each_role_passes_its_own_settings_and_no_other_roles_secrets() -> None:
    services = compose()["services"]
    for role, cls in settings.ROLES.items():
        env = set(services[role]["environment"])
        # Every setting of the role reaches its process (from the shell or .env) ...
        assert env - DOCKER_CLIENT == env_names(cls), role
        # ... and no secret of the other role does.
        others = set().union(*(s for r, s in SECRETS.items() if r != role))
        assert not env & others, role
    assert not set(services["rq-dashboard"].get("environment") or {}) & set().union(
        *SECRETS.values()
    )
    for role, names in REQUIRED.items():
        env = services[role]["environment"]
        for name in names:
            assert re.fullmatch(rf"\$\{{{name}:\?.+\}}", env[name]), f"{role}: {name}"
    for role, name in EITHER.items():
        assert services[role]["environment"][name] == f"${{{name}:-}}", f"{role}: {name}"
    for role in settings.ROLES:
        for name in FIXED & set(services[role]["environment"]):
            assert services[role]["environment"][name], f"{role}: {name} must be fixed"


def test_services_wait_for_a_healthy_redis_and_build_from_a_chosen_base() -> None:
    services = compose()["services"]
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    for name in ("bot", "worker", "rq-dashboard"):
        assert services[name]["depends_on"] == {"redis": {"condition": "service_healthy"}}
    for name, spec in services.items():
        assert spec["build"]["args"]["BASE"].startswith("${AGENTS_BASE:-"), name
    redis_dockerfile = (ROOT / "deploy" / "redis" / "Dockerfile").read_text()
    command = redis_dockerfile[redis_dockerfile.index("CMD") :]
    assert '"--appendonly", "yes"' in command
    assert '"--maxmemory-policy", "noeviction"' in command
    for dockerfile in (ROOT / "Dockerfile", ROOT / "deploy" / "redis" / "Dockerfile"):
        assert re.search(r"^ARG BASE=", dockerfile.read_text(), flags=re.MULTILINE)


def run_config(
    env: dict[str, str], tmp_path: Path, env_file: str = "", quiet: bool = True
) -> subprocess.CompletedProcess[str]:
    # An env file of the test's own: no .env of this checkout fills in what it leaves out.
    dotenv = tmp_path / "test.env"
    dotenv.write_text(env_file)
    return subprocess.run(
        [
            *compose_command(),
            *("--env-file", str(dotenv), "-f", str(COMPOSE_FILE), "config"),
            *(["-q"] if quiet else []),
        ],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.docker
def test_compose_config_validates_and_names_each_missing_secret(tmp_path: Path) -> None:
    secrets = {name: "x" for names in REQUIRED.values() for name in names}
    ok = run_config(secrets, tmp_path)
    assert ok.returncode == 0, ok.stderr
    for name in secrets:
        missing = run_config({k: v for k, v in secrets.items() if k != name}, tmp_path)
        assert missing.returncode != 0
        assert f"set {name}" in missing.stderr


@pytest.mark.docker
def test_a_setting_in_dotenv_reaches_only_the_roles_that_read_it(tmp_path: Path) -> None:
    secrets = "".join(f"{name}=x\n" for names in REQUIRED.values() for name in names)
    env_file = (
        secrets
        + "AGENTS_MAX_TURNS=7\nAGENTS_CHANNEL_REPOS=C1=acme/api\nREDIS_URL=redis://elsewhere\n"
        + "AGENTS_GITHUB_APP_ID=7\n"
    )
    result = run_config({}, tmp_path, env_file=env_file, quiet=False)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    worker, bot = services["worker"]["environment"], services["bot"]["environment"]
    assert worker["AGENTS_MAX_TURNS"] == "7"
    assert "AGENTS_MAX_TURNS" not in bot
    assert bot["AGENTS_CHANNEL_REPOS"] == "C1=acme/api"
    assert "AGENTS_CHANNEL_REPOS" not in worker
    # The GitHub App path: no GITHUB_TOKEN needed (the worker checks for one or the App).
    assert worker["AGENTS_GITHUB_APP_ID"] == "7"
    assert "AGENTS_GITHUB_APP_ID" not in bot
    assert worker["GITHUB_TOKEN"] == ""
    # A REDIS_URL meant for processes outside compose does not redirect the stack.
    assert worker["REDIS_URL"] == bot["REDIS_URL"] == "redis://redis:6379/0"
