"""Repository environments against setup in every sandbox (docs/environments.md).

The fixture is made at benchmark time: the sample repository plus a
``requirements.txt`` whose dependency tree (sphinx, flask, rich, pytest, pandas,
SQLAlchemy and their dependencies: about 45 packages) is downloaded from PyPI as
wheels into a ``wheels/`` directory the repository carries (the sandbox has no
network), and an ``.agents.yml`` whose setup makes a venv in the checkout (``.venv``,
ignored by git) and installs them. Nothing of it is checked in: the wheels are cached
under ``~/.cache/agents-bench`` between benchmark runs.

Figures, each against its baseline in the same run:

* sandbox ready with the dependencies, warm environment (``Environments.open`` of a
  fresh container, not from the pool, its checkout moved to the commit, until the
  first exec returns) against today's path (workspace archive, ``start()``, setup,
  first exec); both then check (untimed) that the packages import;
* sandbox claimed from the warm pool (claim, checkout, first exec) against a raw
  ``docker run --rm IMAGE true`` of the environment's image;
* the share of a replayed run's wall time spent in setup, and a run with a rework,
  start to approval: the recorded clean scenario, a rework with the recorded rework
  scenario, then Approve, in this process (with the worker's upkeep thread), on the
  old path and then on a warm environment.

    python -m bench --only environments
"""

from __future__ import annotations

import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

import jobs.blueprint.environment as environment_module
import jobs.blueprint.sandbox as sandbox_module
from bench.repo_fixture import GIT_ENV
from bench.sandbox_ready import raw_docker_run
from bench.stats import Figure, Result, Target
from cli.commands.demo import DEMO_REPO, DEMO_REQUEST, SAMPLE, TRANSCRIPTS
from jobs import decisions
from jobs.agent.config import AgentConfig
from jobs.agent.model import ModelResponse, OnRetry, Request
from jobs.blueprint.config import BlueprintConfig
from jobs.blueprint.deps import Deps
from jobs.blueprint.runner import run_blueprint
from jobs.blueprint.sandbox import run_setup, sandbox_config
from jobs.blueprint.wiring import sandbox_factory
from jobs.environments.dockerfile import allowed_bases
from jobs.environments.recipe import Recipe
from jobs.environments.service import Environments
from jobs.environments.upkeep import EnvironmentUpkeep
from jobs.forge.local import LocalForge
from jobs.queue import RunQueue
from jobs.repo_config import RepoConfig, parse_repo_config
from runs.record import Run, RunStatus
from runs.store import RunStore
from sandboxes.cache import RepoCache
from sandboxes.config import SandboxConfig
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.env_images import EnvEngine
from sandboxes.protocol import Sandbox

#: The top of the dependency tree (about 45 wheels with their dependencies).
PACKAGES = [
    "sphinx==7.2.6",
    "flask==3.0.3",
    "rich==13.7.1",
    "pytest==8.2.2",
    "attrs==23.2.0",
    "python-dateutil==2.9.0.post0",
    "PyYAML==6.0.1",
    "tomli==2.0.1",
    "pandas==2.2.2",
    "SQLAlchemy==2.0.30",
]
IMPORTS = "import sphinx, flask, rich, yaml, dateutil, attrs, pandas, sqlalchemy"
QUICK_PACKAGES = ["iniconfig==2.0.0"]
QUICK_IMPORTS = "import iniconfig"
SETUP = (
    "python3 -m venv .venv && .venv/bin/pip install -q --no-index "
    "--find-links wheels -r requirements.txt"
)
REWORK = "Please also add a CHANGELOG.md entry for this change."
CACHE = Path.home() / ".cache" / "agents-bench"
PIP_PLATFORM = [
    "--only-binary=:all:",
    "--python-version", "3.11",
    "--implementation", "cp",
    "--abi", "cp311",
    "--platform", "manylinux_2_17_x86_64",
    "--platform", "manylinux2014_x86_64",
    "--platform", "any",
]  # fmt: skip


def wheels(packages: list[str]) -> Path:
    """The packages and their dependencies as wheels for the sandbox's Python (3.11),
    downloaded from PyPI once and kept under :data:`CACHE`."""
    digest = hashlib.sha256("\n".join(packages).encode()).hexdigest()[:12]
    target = CACHE / f"wheels-{digest}"
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", *PIP_PLATFORM, "-d", str(target),
             *packages],
            check=True,
            timeout=900,
        )  # fmt: skip
        (target / ".complete").write_text("")
    return target


def make_fixture(root: Path, packages: list[str]) -> tuple[Path, int]:
    """The sample repository with the wheelhouse and setup, committed; and how many
    packages setup installs."""
    repo = root / "fixture"
    shutil.copytree(SAMPLE, repo, ignore=shutil.ignore_patterns(".git", "__pycache__"))
    found = sorted(wheels(packages).glob("*.whl"))
    (repo / "wheels").mkdir()
    for wheel in found:
        shutil.copy(wheel, repo / "wheels" / wheel.name)
    (repo / "requirements.txt").write_text("\n".join(packages) + "\n")
    (repo / ".agents.yml").write_text(f"setup:\n  - {SETUP}\n")
    with (repo / ".gitignore").open("a") as ignore:
        ignore.write(".venv/\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "fixture"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=GIT_ENV)
    return repo, len(found)


class ScriptModel:
    """Answers with the recorded replies of a scenario (``examples/transcripts/blueprint/
    *.script.json``), in order. Unlike the replay it does not compare each request with
    the recording: the fixture's venv in the workspace shows up in the agent's file
    listings, which the recording never saw."""

    def __init__(self, replies: list[dict[str, Any]], start: int) -> None:
        self.replies = replies
        self.position = start

    def complete(self, request: Request, *, on_retry: OnRetry | None = None) -> ModelResponse:
        reply = self.replies[self.position]
        self.position += 1
        return ModelResponse.from_api({"id": f"msg_{self.position}", "model": request["model"],
                                       **reply})  # fmt: skip


class ScriptProvider:
    """The clean scenario for iteration 1 and the rework scenario for iteration 2."""

    @contextmanager
    def open(self, run: Run) -> Iterator[ScriptModel]:
        name = "clean" if run.iteration == 1 else "rework"
        replies = json.loads((TRANSCRIPTS / f"{name}.script.json").read_text())
        yield ScriptModel(replies, run.artifacts.model_calls)


@dataclass
class Bench:
    root: Path
    conn: redis.Redis
    store: RunStore
    forge: LocalForge
    cache: RepoCache
    engine: EnvEngine
    url: str
    config: RepoConfig
    imports: str

    def deps(self, envs: Environments | None) -> Deps:
        blueprint = BlueprintConfig(
            ci_timeout_seconds=0,
            sandbox_backend="docker",
            sandbox=SandboxConfig().with_changes(store=self.store.identity),
        )
        return Deps(
            store=self.store,
            forge=self.forge,
            cache=self.cache,
            sandboxes=sandbox_factory("docker"),
            models=ScriptProvider(),
            agent=AgentConfig(),
            config=blueprint,
            workdir=self.root / "publish",
            environments=envs,
        )

    def environments(self, pool: int, setup: Callable[..., Any] = run_setup) -> Environments:
        return Environments(
            self.engine,
            self.conn,
            self.cache,
            setup=setup,
            owner=self.store.nonce,
            prefix="bench-env",
            pool_size=pool,
        )

    def recipe(self, envs: Environments, commit: str) -> Recipe:
        return envs.plan(
            repo=DEMO_REPO,
            url=self.url,
            commit=commit,
            config=self.config,
            sandbox=sandbox_config(SandboxConfig(), self.config),
            allowed_bases=allowed_bases(SandboxConfig().image, self.config),
        )

    def check_deps(self, sandbox: Sandbox) -> None:
        result = sandbox.exec(f'.venv/bin/python -c "{self.imports}"')
        if not result.ok:
            raise RuntimeError(f"the dependencies do not import: {result.stderr[-500:]}")


def old_sandbox(bench: Bench, commit: str) -> float:
    """Today's path: archive, start, setup, first exec; then (not timed) the check that
    the dependencies import."""
    started = time.perf_counter()
    sandbox = DockerSandbox(
        "bench-old",
        sandbox_config(SandboxConfig(), bench.config),
        workspace=bench.cache.workspace(bench.url, commit),
        client=bench.engine.client,
    )
    try:
        sandbox.start()
        run_setup(sandbox, bench.config)
        sandbox.exec("true")
        elapsed = time.perf_counter() - started
        bench.check_deps(sandbox)
        return elapsed
    finally:
        sandbox.close()


def env_sandbox(bench: Bench, envs: Environments, commit: str, *, pooled: bool) -> float:
    """On the environment: a fresh container (or a claimed one), checkout, first exec;
    then (not timed) the check that the dependencies import."""
    recipe = bench.recipe(envs, commit)
    image = envs.ensure(recipe, commit).image
    started = time.perf_counter()
    sandbox, claimed = envs.open("bench-env", recipe, image, commit)
    try:
        sandbox.exec("true")
        elapsed = time.perf_counter() - started
        bench.check_deps(sandbox)
    finally:
        sandbox.close()
    if claimed != pooled:
        raise RuntimeError(f"expected a {'pool' if pooled else 'fresh'} container")
    return elapsed


@contextmanager
def timed_setup(spent: list[float]) -> Iterator[Callable[..., Any]]:
    """``run_setup`` that adds its seconds to ``spent``, for both paths of the blueprint."""

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return run_setup(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    name = "run_setup"
    modules = (sandbox_module, environment_module)
    saved = [getattr(module, name) for module in modules]
    for module in modules:
        setattr(module, name, timed)
    try:
        yield timed
    finally:
        for module, original in zip(modules, saved, strict=True):
            setattr(module, name, original)


def run_with_rework(bench: Bench, deps: Deps) -> tuple[float, float]:
    """A run, a rework, Approve; its wall time and the seconds of setup in it."""
    spent: list[float] = []
    with timed_setup(spent):
        started = time.perf_counter()
        run = bench.store.create(requester="U_BENCH", repo=DEMO_REPO, request=DEMO_REQUEST)
        first = run_blueprint(deps, run.id, by="bench")
        if first.status is not RunStatus.AWAITING_DECISION:
            raise RuntimeError(f"the run ended {first.status.value}: {first.error}")
        RunQueue(bench.conn, bench.store, name="bench-env").request_rework(
            run.id, by="U_BENCH", feedback=REWORK
        )
        second = run_blueprint(deps, run.id, by="bench")
        if second.status is not RunStatus.AWAITING_DECISION:
            raise RuntimeError(f"the rework ended {second.status.value}: {second.error}")
        approved = decisions.approve_on_forge(
            bench.store, bench.forge, deps.config, run.id, "U_BENCH"
        )
        if approved.status is not RunStatus.APPROVED:
            raise RuntimeError(f"the approval ended {approved.status.value}")
        return time.perf_counter() - started, sum(spent)


def run(conn: redis.Redis, root: Path, *, rounds: int, pool_rounds: int, quick: bool) -> Result:
    """The figures; ``quick``: a one-package fixture and no whole runs (the smoke test)."""
    root.mkdir(parents=True, exist_ok=True)
    packages = QUICK_PACKAGES if quick else PACKAGES
    source, installed = make_fixture(root, packages)
    forge = LocalForge(root / "forge")
    forge.create_repo(DEMO_REPO, source=source)
    url = forge.clone_url(DEMO_REPO)
    cache = RepoCache(root / "cache")
    cache.mirror(url)
    engine = EnvEngine.try_connect()
    if engine is None:
        raise RuntimeError("no Docker engine")
    config = parse_repo_config((source / ".agents.yml").read_text())
    store = RunStore(conn, prefix="bench-env")
    imports = QUICK_IMPORTS if quick else IMPORTS
    bench = Bench(root, conn, store, forge, cache, engine, url, config, imports)
    head = cache.resolve(url, "refs/heads/main")
    try:
        return _measure(
            bench, head, installed, rounds=rounds, pool_rounds=pool_rounds, whole_runs=not quick
        )
    finally:
        # Only the benchmark's own environments (its store owns them): workers and tests
        # sharing the engine build theirs meanwhile, and those are not ours to remove.
        for image in engine.images(owner=store.nonce):
            for container in engine.client.containers.list(
                all=True, filters={"ancestor": image.id}
            ):
                container.remove(force=True)
            engine.remove(image)
        engine.close()


def _measure(
    bench: Bench, head: str, installed: int, *, rounds: int, pool_rounds: int, whole_runs: bool
) -> Result:
    fresh = bench.environments(pool=0)
    build_started = time.perf_counter()
    built = fresh.ensure(bench.recipe(fresh, head), head)
    build = time.perf_counter() - build_started
    old = [old_sandbox(bench, head) for _ in range(rounds)]
    warm = [env_sandbox(bench, fresh, head, pooled=False) for _ in range(rounds)]
    ready = Figure(
        name="sandbox ready with dependencies, warm environment",
        unit="s",
        samples=warm,
        how=f"fixture: the sample repository plus {installed} packages from PyPI installed by "
        "setup; a fresh container on the environment (no pool), checkout at the commit, "
        "until the first exec returns (the packages import: checked after)",
        target=Target("ratio", 0.05, "≤ 0.05x setup in every sandbox"),
        baseline=old,
        baseline_label="today: workspace archive, `start()`, setup, first exec",
        decimals=2,
    )
    pooled = bench.environments(pool=1)
    config = pooled.sandbox_config(bench.recipe(pooled, head), built.image)
    raw, claims = [], []
    for _ in range(pool_rounds):
        pooled.pool.fill(config, 1)
        raw.append(raw_docker_run(built.image.id))
        claims.append(env_sandbox(bench, pooled, head, pooled=True))
    claim = Figure(
        name="sandbox claimed from the warm pool",
        unit="s",
        samples=claims,
        how="claim an idle container of the environment, move its checkout to the commit, "
        "first exec",
        target=Target("ratio", 0.3, "≤ 0.3x a raw `docker run`"),
        baseline=raw,
        baseline_label="`docker run --rm --network none ENV_IMAGE true`, right before each",
        paired_ratios=[c / r for c, r in zip(claims, raw, strict=True)],
        decimals=3,
    )
    figures = [ready, claim]
    details = [
        f"The fixture's setup installs {installed} packages (wheels from PyPI, no network in "
        f"the sandbox); building its environment took {build:.1f} s (setup "
        f"{built.image.build_seconds:.1f} s, then the commit).",
        "",
        "| case | median |",
        "|---|---|",
        f"| today: archive + start + setup + first exec | {statistics.median(old):.2f} s |",
        f"| warm environment, fresh container | {statistics.median(warm):.3f} s |",
    ]
    if pool_rounds:
        details += [
            f"| warm pool claim + checkout + first exec | {statistics.median(claims):.3f} s |",
            f"| raw `docker run --rm ENV_IMAGE true` | {statistics.median(raw):.3f} s |",
        ]
    if whole_runs:
        old_total, old_setup = run_with_rework(bench, bench.deps(None))
        # As on a worker: its upkeep thread refills the pool behind each claim.
        upkeep = EnvironmentUpkeep(pooled, budget=1 << 40, is_live=lambda holder, at: True)
        pooled.pool.fill(config, 1)
        upkeep.start()
        try:
            new_total, new_setup = run_with_rework(bench, bench.deps(pooled))
        finally:
            upkeep.stop(timeout=30)
        share_old, share_new = old_setup / old_total, new_setup / new_total
        figures.append(
            Figure(
                name="share of a replayed run's wall time spent in setup",
                unit="%",
                samples=[share_new],
                how="the recorded clean run, a rework (recorded) and Approve, in-process, "
                "Docker sandboxes, on a warm environment: seconds in setup / wall time",
                target=Target("p50", 0.05, "≤ 5% (today about 45%)"),
                baseline=[share_old],
                baseline_label="the same run on today's path (setup in every sandbox)",
                scale=100.0,
            )
        )
        figures.append(
            Figure(
                name="a run with rework, start to approval",
                unit="s",
                samples=[new_total],
                how="the same run with rework and Approve, warm environment and pool",
                baseline=[old_total],
                baseline_label="today's path, same fixture",
                decimals=1,
            )
        )
        details += [
            "",
            f"A run with a rework, start to Approve: {old_total:.1f} s today, of which "
            f"{old_setup:.1f} s setup ({share_old:.0%}); {new_total:.1f} s on the "
            f"environment, of which {new_setup:.1f} s setup ({share_new:.0%}).",
        ]
    return Result(figures, details="\n".join(details))
