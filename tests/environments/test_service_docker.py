"""Environments on the real engine, through the service the blueprint uses: built once
per key, reused without setup, never cached when setup fails, one build for many runs."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from jobs.blueprint.sandbox import sandbox_config
from jobs.environments.recipe import Recipe
from jobs.environments.service import Ready
from jobs.repo_config import parse_repo_config
from process.exceptions import EnvironmentBuildFailed
from sandboxes.cache import RepoCache
from tests.environments.conftest import MARKER_LOG, SETUP, EnvHarness, env_repo
from tests.sandboxes.conftest import commit_all, git

pytestmark = [pytest.mark.redis, pytest.mark.docker]


def publish(harness: EnvHarness, source: Path, name: str = "acme/retrying") -> str:
    """``source`` as a forge repository; its clone URL, mirrored."""
    harness.forge.create_repo(name, source=source)
    url = harness.forge.clone_url(name)
    harness.deps.cache.mirror(url)
    return url


def recipe_at(harness: EnvHarness, url: str, commit: str, repo: str = "acme/retrying") -> Recipe:
    cache: RepoCache = harness.deps.cache
    text = cache.read_blob(url, _oid(cache, url, commit, ".agents.yml"), 65536) or b""
    config = parse_repo_config(text.decode())
    return harness.envs.plan(
        repo=repo,
        url=url,
        commit=commit,
        config=config,
        sandbox=sandbox_config(harness.deps.config.sandbox, config),
        allowed_bases={harness.deps.config.sandbox.image},
    )


def _oid(cache: RepoCache, url: str, commit: str, path: str) -> str:
    return next(e.oid for e in cache.tree(url, commit) if e.path == path)


def head(harness: EnvHarness, url: str) -> str:
    return harness.deps.cache.resolve(url, "refs/heads/main")


def test_a_second_sandbox_of_the_same_key_runs_no_setup(
    env_harness: EnvHarness, wheelhouse: Path
) -> None:
    url = publish(env_harness, env_repo(env_harness.root / "src", wheelhouse))
    commit = head(env_harness, url)
    recipe = recipe_at(env_harness, url, commit)
    envs = env_harness.envs

    first = envs.ensure(recipe, commit)
    assert first.built
    assert envs.builds(recipe.key) == 1
    assert first.image.commit == commit
    assert "requirements.txt" in first.image.inputs

    again = envs.ensure(recipe, commit)
    assert not again.built
    assert again.image.id == first.image.id
    sandbox, _ = envs.open("1", recipe, again.image, commit)
    try:
        # The marker setup appends was written once, by the build: not by this sandbox.
        marker = sandbox.exec(["cat", MARKER_LOG])
        assert marker.stdout.splitlines() == ["setup-ran"], marker
        imported = sandbox.exec(["python3", "-c", "import iniconfig; print(iniconfig.__file__)"])
        assert imported.ok, imported.stderr
        assert imported.stdout.startswith("/workspace/.deps/iniconfig/")
        assert sandbox.exec(["id", "-u"]).stdout.strip() == "1000"
        assert sandbox.exec("git status --porcelain").stdout == ""
    finally:
        sandbox.close()
    assert envs.builds(recipe.key) == 1


def test_a_sandbox_moves_to_its_commit_and_runs_update_only_when_the_source_moved(
    env_harness: EnvHarness, wheelhouse: Path
) -> None:
    source = env_repo(env_harness.root / "src", wheelhouse)
    url = publish(env_harness, source)
    built_from = head(env_harness, url)
    envs = env_harness.envs
    ready = envs.ensure(recipe_at(env_harness, url, built_from), built_from)

    work = env_harness.root / "work"
    git(env_harness.root, "clone", "-q", url, str(work))
    (work / "retrying" / "extra.py").write_text("EXTRA = 1\n")
    later = commit_all(work, "a source change")
    git(work, "push", "-q", "origin", "HEAD:main")
    env_harness.deps.cache.mirror(url)
    recipe = recipe_at(env_harness, url, later)
    assert recipe.key == ready.image.key  # the source moved, the key did not
    sandbox, _ = envs.open("2", recipe, ready.image, later)
    try:
        assert sandbox.exec(["cat", "retrying/extra.py"]).stdout == "EXTRA = 1\n"
        assert sandbox.exec(["git", "rev-parse", "HEAD"]).stdout.strip() == later
        assert sandbox.export_patch() == b""  # the patch base is the run's commit
        assert sandbox.exec(["test", "-d", ".deps/iniconfig"]).ok  # dependencies stayed
    finally:
        sandbox.close()


def test_a_failed_setup_is_not_cached_and_names_the_command(
    env_harness: EnvHarness, wheelhouse: Path
) -> None:
    failing = [*SETUP, "for i in $(seq 1 40); do echo line-$i; done; exit 3"]
    url = publish(env_harness, env_repo(env_harness.root / "src", wheelhouse, setup=failing))
    commit = head(env_harness, url)
    recipe = recipe_at(env_harness, url, commit)
    envs = env_harness.envs

    for attempt in (1, 2):  # a second run tries again: the failure was not cached
        with pytest.raises(EnvironmentBuildFailed) as failed:
            envs.ensure(recipe, commit)
        message = str(failed.value)
        assert "setup command `for i in $(seq 1 40)" in message, attempt
        assert "exited 3" in message
        assert "line-1\n" in message
        assert "line-40" in message
        assert "line-20\n" not in message
        assert envs.engine.find(recipe.key) is None
    assert envs.builds(recipe.key) == 0


def test_four_concurrent_runs_against_a_changed_key_file_build_once(
    env_harness: EnvHarness, wheelhouse: Path
) -> None:
    source = env_repo(env_harness.root / "src", wheelhouse)
    url = publish(env_harness, source)
    envs = env_harness.envs
    old = head(env_harness, url)
    envs.ensure(recipe_at(env_harness, url, old), old)

    work = env_harness.root / "work"
    git(env_harness.root, "clone", "-q", url, str(work))
    (work / "requirements.txt").write_text((work / "requirements.txt").read_text() + "# v2\n")
    changed = commit_all(work, "change a key file")
    git(work, "push", "-q", "origin", "HEAD:main")
    env_harness.deps.cache.mirror(url)
    recipe = recipe_at(env_harness, url, changed)
    assert envs.engine.find(recipe.key) is None

    results: list[Ready] = []
    waits: list[object] = []
    errors: list[BaseException] = []

    together = threading.Barrier(4)

    def one_run() -> None:
        together.wait()
        try:
            results.append(envs.ensure(recipe, changed, on_wait=waits.append))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one_run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    assert sorted(r.built for r in results) == [False, False, False, True]
    assert len({r.image.id for r in results}) == 1
    assert len(waits) == 3  # each run that waited was told, once
    assert envs.builds(recipe.key) == 1
    assert len(envs.engine.images(recipe.key)) == 1
