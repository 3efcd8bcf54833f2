"""Environments from what a repository brings, on the real engine: the devcontainer
example (examples/devcontainer) and a Dockerfile named in ``.agents.yml``. Both are
built on the worker's engine, and their sandboxes run as uid 1000, hardened."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jobs.blueprint.sandbox import sandbox_config
from jobs.blueprint.steps.prepare import config_at
from jobs.environments.dockerfile import allowed_bases
from jobs.repo_config import RepoConfig
from sandboxes.protocol import Sandbox
from tests.blueprint.conftest import ROOT
from tests.environments.conftest import EnvHarness, env_repo
from tests.environments.test_service_docker import head, publish

pytestmark = [pytest.mark.redis, pytest.mark.docker]

EXAMPLE = ROOT / "examples" / "devcontainer" / ".devcontainer"
NO_SETUP = "checks:\n  - python3 -m pytest -q\n"


def build_and_open(harness: EnvHarness, url: str, commit: str, config: RepoConfig) -> Sandbox:
    envs = harness.envs
    recipe = envs.plan(
        repo="acme/retrying",
        url=url,
        commit=commit,
        config=config,
        sandbox=sandbox_config(harness.deps.config.sandbox, config),
        allowed_bases=allowed_bases(harness.deps.config.sandbox.image, config),
    )
    ready = envs.ensure(recipe, commit)
    assert ready.built
    sandbox, _ = envs.open("1", recipe, ready.image, commit)
    return sandbox


def test_the_devcontainer_example_builds_an_environment(
    env_harness: EnvHarness, wheelhouse: Path
) -> None:
    source = env_repo(env_harness.root / "src", wheelhouse, extra={".agents.yml": NO_SETUP})
    shutil.copytree(EXAMPLE, source / ".devcontainer")
    url = publish(env_harness, source)
    commit = head(env_harness, url)
    config, _ = config_at(env_harness.deps, url, commit)
    env = config.environment
    assert env.origin == "devcontainer"
    assert env.dockerfile == ".devcontainer/Dockerfile"
    assert env.context == "."
    assert env.ignored == ["features", "forwardPorts", "remoteUser"]
    assert env.update == ["echo content-updated >> /home/agent/update.log"]
    assert len(config.setup) == 3

    sandbox = build_and_open(env_harness, url, commit, config)
    try:
        assert sandbox.exec(["/opt/tools/greet"]).stdout == "tool-ok\n"  # build.args
        assert sandbox.exec(["id", "-u"]).stdout.strip() == "1000"  # not remoteUser
        assert sandbox.exec(["python3", "-c", "import iniconfig"]).ok  # containerEnv
        marker = sandbox.exec(["cat", "/home/agent/setup-marker.log"]).stdout
        assert marker == "post-create\n"
        assert not sandbox.exec(["touch", "/etc/agents-was-here"]).ok
        assert sandbox.exec(["touch", "/opt/tools/mine"]).ok  # the image gave it to uid 1000
    finally:
        sandbox.close()


def test_a_repository_dockerfile_builds_an_environment(
    env_harness: EnvHarness, wheelhouse: Path
) -> None:
    agents_yml = (
        "setup:\n  - echo on-the-repo-image >> /home/agent/setup-marker.log\n"
        "environment:\n  dockerfile: docker/env.Dockerfile\n"
    )
    dockerfile = (
        "FROM agents-sandbox:latest AS base\n"
        "FROM base\n"
        "USER root\n"
        "RUN echo from-the-dockerfile > /etc/agents-env-proof\n"
    )
    source = env_repo(
        env_harness.root / "src",
        wheelhouse,
        extra={".agents.yml": agents_yml, "docker/env.Dockerfile": dockerfile},
    )
    url = publish(env_harness, source)
    commit = head(env_harness, url)
    config, _ = config_at(env_harness.deps, url, commit)
    sandbox = build_and_open(env_harness, url, commit, config)
    try:
        assert sandbox.exec(["cat", "/etc/agents-env-proof"]).stdout == "from-the-dockerfile\n"
        assert sandbox.exec(["cat", "/home/agent/setup-marker.log"]).stdout == (
            "on-the-repo-image\n"
        )
        assert sandbox.exec(["id", "-u"]).stdout.strip() == "1000"
        assert not sandbox.exec(["touch", "/etc/agents-env-proof"]).ok
        # Hardened as every sandbox: no capabilities, nothing writable but the workspace,
        # the home directory and /tmp.
        caps = sandbox.exec(["sh", "-c", "grep CapEff /proc/self/status"]).stdout
        assert caps.split()[-1] == "0000000000000000"
        writable = sandbox.exec(
            ["sh", "-c", "find / -xdev -writable -not -path '/proc/*' 2>/dev/null"]
        ).stdout.split()
        roots = {"/" + path.split("/")[1] for path in writable}
        assert roots <= {"/workspace", "/home", "/tmp"}, writable[:20]
        for sealed in ("/var/tmp/x", "/run/lock/x", "/usr/local/bin/x"):
            assert not sandbox.exec(["touch", sealed]).ok, sealed
    finally:
        sandbox.close()
