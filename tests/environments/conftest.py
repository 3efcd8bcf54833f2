"""Real parts for the environment tests: the Docker engine, real Redis, a fixture
repository whose setup installs a real package (downloaded from PyPI once per session
into a wheelhouse the repository carries), and the blueprint wired to build and reuse
environments.

Each test's repository carries a nonce in its requirements, so its environment key is
its own: tests never find another test's (or another checkout's) image on a shared
engine, and every image and pool container a test made is removed afterwards.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker.errors
import pytest
import redis

from jobs.agent.config import AgentConfig
from jobs.blueprint.config import BlueprintConfig
from jobs.blueprint.deps import Deps
from jobs.blueprint.runner import run_blueprint
from jobs.blueprint.sandbox import run_setup
from jobs.blueprint.wiring import sandbox_factory
from jobs.environments.service import Environments
from jobs.forge.local import LocalForge
from runs.record import Run
from runs.store import RunStore
from sandboxes.cache import RepoCache
from sandboxes.env_images import EnvEngine
from tests.blueprint.conftest import SAMPLE, Scripted
from tests.blueprint.e2e import SANDBOX_IMAGE, docker_client, require_image
from tests.blueprint.helpers import copy_sample
from tests.conftest import real_redis

#: The real package the fixture's setup installs.
PACKAGE = "iniconfig==2.0.0"
REPO = "acme/retrying"
MARKER_LOG = "/home/agent/setup-marker.log"
SETUP = [
    "pip install -q --no-index --find-links wheels --target .deps -r requirements.txt",
    f"echo setup-ran >> {MARKER_LOG}",
]


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's wheel, from PyPI (pip's own cache makes later sessions fast)."""
    target = tmp_path_factory.mktemp("wheelhouse")
    pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    subprocess.run([*pip, "-d", str(target), PACKAGE], check=True, timeout=300)
    assert list(target.glob("*.whl")), "pip download produced no wheel"
    return target


def agents_yml(setup: list[str], extra: str = "", update: str | None = None) -> str:
    lines = ["setup:"] + [f"  - {command}" for command in setup]
    lines += ["environment:", "  env: {PYTHONPATH: /workspace/.deps}"]
    if update:
        lines.append(f"  update: {update}")
    return "\n".join(lines) + "\n" + extra


def env_repo(
    target: Path, wheelhouse: Path, *, setup: list[str] = SETUP, extra: dict[str, str] | None = None
) -> Path:
    """The sample repository with a wheelhouse, requirements (with a nonce: this test's
    own key) and an ``.agents.yml`` whose setup installs them and writes a marker."""
    files = {
        "requirements.txt": f"# nonce {secrets.token_hex(8)}\n{PACKAGE}\n",
        ".agents.yml": agents_yml(setup),
        ".gitignore": "__pycache__/\n.pytest_cache/\n.deps/\n",
        **(extra or {}),
    }
    copy_sample(SAMPLE, target, files)
    (target / "wheels").mkdir()
    for wheel in wheelhouse.glob("*.whl"):
        (target / "wheels" / wheel.name).write_bytes(wheel.read_bytes())
    return target


@dataclass
class EnvHarness:
    root: Path
    connection: redis.Redis
    store: RunStore
    forge: LocalForge
    deps: Deps
    models: Scripted
    engine: EnvEngine
    envs: Environments

    def create(self, request: str, *, repo: str = REPO) -> Run:
        return self.store.create(requester="U1", repo=repo, request=request)

    def run(self, run_id: int) -> Run:
        return run_blueprint(self.deps, run_id, by="test")

    def environments(self, repo: str = REPO) -> list[str]:
        """This store's environment keys of ``repo`` (the engine may hold others')."""
        return [
            image.key for image in self.engine.images(owner=self.envs.owner) if image.repo == repo
        ]


def open_environments(
    engine: EnvEngine, store: RunStore, cache: RepoCache, pool: int
) -> Environments:
    return Environments(
        engine,
        store.redis,
        cache,
        setup=run_setup,
        owner=store.nonce,
        prefix=store.prefix,
        pool_size=pool,
    )


@pytest.fixture
def env_owners() -> set[str]:
    """The run stores (their nonces) whose environment images this test makes: what
    it removes afterwards. Other tests on the same engine make images too."""
    return set()


@pytest.fixture
def engine(env_owners: set[str]) -> Iterator[EnvEngine]:
    client = docker_client()
    try:
        require_image(client)
    finally:
        client.close()
    found = EnvEngine.try_connect()
    assert found is not None
    before = {image.id for image in found.images()}
    yield found
    cleanup(found, before, env_owners)
    found.close()


def cleanup(engine: EnvEngine, before: set[str], owners: set[str]) -> None:
    """Remove the environment images this test's stores made, and every container on
    them."""
    made = [image for image in engine.images() if image.id not in before and image.owner in owners]
    for image in made:
        for container in engine.client.containers.list(
            all=True, filters={"ancestor": image.id}, ignore_removed=True
        ):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
        engine.remove(image)


@pytest.fixture
def env_harness(tmp_path: Path, engine: EnvEngine, env_owners: set[str]) -> Iterator[EnvHarness]:
    connection = real_redis()
    store = RunStore(connection, prefix=f"envtest{secrets.token_hex(3)}")
    env_owners.add(store.nonce)
    forge = LocalForge(tmp_path / "forge")
    cache = RepoCache(tmp_path / "cache")
    envs = open_environments(engine, store, cache, pool=1)
    models = Scripted({})
    deps = Deps(
        store=store,
        forge=forge,
        cache=cache,
        sandboxes=sandbox_factory("docker"),
        models=models,
        agent=AgentConfig(),
        config=BlueprintConfig(
            ci_timeout_seconds=0,
            sandbox_backend="docker",
            sandbox=BlueprintConfig().sandbox.with_changes(
                image=SANDBOX_IMAGE, store=store.identity
            ),
        ),
        workdir=tmp_path / "publish",
        environments=envs,
    )
    yield EnvHarness(tmp_path, connection, store, forge, deps, models, engine, envs)
    connection.flushdb()
    connection.close()
