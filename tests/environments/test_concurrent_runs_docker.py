"""Four runs at once against a changed key file, each as its own worker would hold it
(its own Redis connection, engine client, mirror and scratch space): exactly one build,
and the three runs that arrive during it wait for it, their threads saying so with the
time the last build took."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import redis

from jobs.blueprint.deps import Deps
from jobs.blueprint.runner import run_blueprint
from jobs.blueprint.sandbox import run_setup, sandbox_config
from jobs.blueprint.steps.prepare import config_at
from jobs.environments.service import Environments
from jobs.forge.local import LocalForge
from jobs.repo_config import RepoConfig
from runs.events import EnvironmentNoted
from runs.projection import project, render_text
from runs.record import Run, RunStatus
from runs.store import RunStore
from sandboxes.cache import RepoCache
from sandboxes.env_images import EnvEngine
from sandboxes.protocol import Sandbox
from tests.blueprint.conftest import CLEAN_REQUEST, REPO, script
from tests.conftest import TEST_REDIS_URL
from tests.environments.conftest import EnvHarness, env_repo
from tests.sandboxes.conftest import commit_all, git

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow]

RUNS = 4
#: A safety net for a broken build, not a measurement: the gate gives up after this.
GATE_SECONDS = 600


def waiting_lines(store: RunStore, run_ids: list[int]) -> dict[int, str]:
    """Each run's "waiting for the environment" note, for the runs that have one."""
    found: dict[int, str] = {}
    for run_id in run_ids:
        for event in store.events(run_id):
            if isinstance(event, EnvironmentNoted) and event.text.startswith("waiting for"):
                found[run_id] = event.text
    return found


def test_four_concurrent_runs_against_a_changed_key_file_build_it_once(
    env_harness: EnvHarness, wheelhouse: Path
) -> None:
    h = env_harness
    source = env_repo(h.root / "src", wheelhouse)
    h.forge.create_repo(REPO, source=source)
    url = h.forge.clone_url(REPO)
    h.deps.cache.mirror(url)

    # The environment of the default branch as it was (its build time is what the
    # waiting runs are told to expect).
    old = h.deps.cache.resolve(url, "refs/heads/main")
    config, _ = config_at(h.deps, url, old)
    first = h.envs.ensure(
        h.envs.plan(
            repo=REPO,
            url=url,
            commit=old,
            config=config,
            sandbox=sandbox_config(h.deps.config.sandbox, config),
            allowed_bases={h.deps.config.sandbox.image},
        ),
        old,
    )
    assert first.built

    # A dependency input changes on the default branch: a new key.
    work = h.root / "work"
    git(h.root, "clone", "-q", url, str(work))
    (work / "requirements.txt").write_text((work / "requirements.txt").read_text() + "# v2\n")
    changed = commit_all(work, "change a key file")
    git(work, "push", "-q", "origin", "HEAD:main")

    h.models.by_iteration = {1: script("clean")}
    run_ids = [h.create(CLEAN_REQUEST).id for _ in range(RUNS)]
    views: dict[int, str] = {}

    def gated_setup(sandbox: Sandbox, config: RepoConfig) -> list[tuple[str, float]]:
        """The build's setup, held until every other run waits for this build."""
        deadline = time.monotonic() + GATE_SECONDS
        while True:
            waiting = waiting_lines(h.store, run_ids)
            if len(waiting) == RUNS - 1:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(waiting)} runs waited for the build")
            time.sleep(0.2)
        for run_id in waiting:
            run = h.store.get(run_id)
            views[run_id] = render_text(project(run, h.store.tail_events(run_id, 20)))
        return run_setup(sandbox, config)

    results: dict[int, Run] = {}
    errors: list[BaseException] = []
    together = threading.Barrier(RUNS)

    def worker(index: int, run_id: int) -> None:
        """One worker's job: its own connection, engine client, mirror and scratch."""
        connection = redis.Redis.from_url(TEST_REDIS_URL)
        engine = EnvEngine.try_connect()
        assert engine is not None
        cache = RepoCache(h.root / f"worker{index}" / "cache")
        store = RunStore(connection, prefix=h.store.prefix)
        envs = Environments(
            engine,
            connection,
            cache,
            setup=gated_setup,
            owner=store.nonce,
            prefix=h.store.prefix,
            pool_size=0,
        )
        deps = Deps(
            store=store,
            forge=LocalForge(h.root / "forge"),
            cache=cache,
            sandboxes=h.deps.sandboxes,
            models=h.models,
            agent=h.deps.agent,
            config=h.deps.config,
            workdir=h.root / f"worker{index}" / "publish",
            environments=envs,
        )
        try:
            together.wait()
            results[run_id] = run_blueprint(deps, run_id, by=f"worker{index}")
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            engine.close()
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(index, run_id))
        for index, run_id in enumerate(run_ids)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=GATE_SECONDS * 2)
    assert errors == []
    assert sorted(results) == sorted(run_ids)
    for run in results.values():
        assert run.status is RunStatus.AWAITING_DECISION, run.error

    uses = [run.artifacts.environment for run in results.values()]
    assert all(use is not None for use in uses)
    keys = {use.key for use in uses if use is not None}
    assert len(keys) == 1
    [key] = keys
    assert key != first.image.key
    assert sorted(use.outcome for use in uses if use is not None) == [
        "built",
        "reused",
        "reused",
        "reused",
    ]
    assert h.envs.builds(key) == 1
    assert len(h.engine.images(key)) == 1

    # The three that arrived during the build waited for it, and said so in the thread,
    # with the expected time (the last build's).
    waited = waiting_lines(h.store, run_ids)
    assert len(waited) == RUNS - 1
    for run_id, line in waited.items():
        assert line.startswith(f"waiting for the environment of {REPO} ({key[:12]})")
        assert "the last build took" in line
        use = results[run_id].artifacts.environment
        assert use is not None
        assert use.outcome == "reused"
        assert f"waiting for environment {key[:12]}, which another run is building" in views[run_id]
        assert "the last build took" in views[run_id]
    [builder] = set(run_ids) - set(waited)
    built = results[builder].artifacts.environment
    assert built is not None
    assert built.outcome == "built"
    assert results[builder].artifacts.base_commit == changed
