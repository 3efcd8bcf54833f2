"""The worker's upkeep on the real engine: warm pools claimed and refilled and kept
within limits by the reaper, background rebuilds when the default branch's inputs
change, and garbage collection that never removes an environment a live run uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.blueprint.sandbox import run_setup
from jobs.environments.collect import collect_images
from jobs.environments.service import Environments
from jobs.environments.upkeep import EnvironmentUpkeep, lease_checker, refresh_default_branch
from runs.record import RunStatus
from sandboxes import labels
from sandboxes.reaper import REASON_FINAL, Reaper
from tests.environments.conftest import EnvHarness, env_repo
from tests.environments.test_service_docker import head, publish, recipe_at
from tests.sandboxes.conftest import commit_all, git

pytestmark = [pytest.mark.redis, pytest.mark.docker]


def pool_containers(harness: EnvHarness, image_id: str) -> list[str]:
    found = harness.engine.client.containers.list(
        filters={"label": labels.POOL}, ignore_removed=True
    )
    return sorted(str(c.id) for c in found if str(c.attrs.get("Image")) == image_id)


def test_a_run_claims_a_pool_container_and_the_pool_refills(
    env_harness: EnvHarness, wheelhouse: Path
) -> None:
    url = publish(env_harness, env_repo(env_harness.root / "src", wheelhouse))
    commit = head(env_harness, url)
    recipe = recipe_at(env_harness, url, commit)
    envs = env_harness.envs
    image = envs.ensure(recipe, commit).image
    upkeep = EnvironmentUpkeep(
        envs, budget=1 << 40, is_live=lease_checker(env_harness.store, envs.max_age)
    )

    first, pooled = envs.open("1", recipe, image, commit)  # no pool yet: a fresh container
    first.close()
    assert not pooled
    assert upkeep.refill() == 1  # the run asked for a pool; the upkeep fills it
    [idle] = pool_containers(env_harness, image.id)

    second, pooled = envs.open("2", recipe, image, commit)
    try:
        assert pooled
        assert second.container_id == idle
        assert second.exec(["python3", "-c", "import iniconfig"]).ok
        assert envs.pool.claim_of(idle) is not None
        assert upkeep.refill() == 1  # refilled behind the claim
        assert len(pool_containers(env_harness, image.id)) == 2  # claimed + a new idle one

        # The reaper judges a claimed container by its run: once the run is final it goes.
        reaper = Reaper(
            envs.engine.client,
            is_final=lambda run_id: run_id == "2",
            store=recipe.sandbox.store,
            pool=envs.pool,
        )
        removed = reaper.reap()
        assert [(r.container_id, r.run_id, r.reason) for r in removed] == [
            (idle, "2", REASON_FINAL)
        ]
    finally:
        second.close()

    # Over the pool's size: trimming (the reaper thread's pass) keeps it within limits.
    assert envs.pool.fill(envs.sandbox_config(recipe, image), 3) == 2
    assert len(pool_containers(env_harness, image.id)) == 3
    assert len(envs.pool.trim(1, envs.max_age)) == 2
    assert len(pool_containers(env_harness, image.id)) == 1


def test_collection_removes_the_least_recently_used_but_never_a_live_one(
    env_harness: EnvHarness, wheelhouse: Path, env_owners: set[str]
) -> None:
    """Four environments over a budget of one byte: the one a live run leases, the one a
    run's sandbox runs on, and another run store's are kept; only the idle one goes,
    though it was used last."""
    envs = env_harness.envs
    other = Environments(
        envs.engine,
        env_harness.connection,
        envs.cache,
        setup=run_setup,
        owner=f"another-{env_harness.store.prefix}",
        prefix=f"another-{env_harness.store.prefix}",
    )
    env_owners.add(other.owner)
    built = {}
    for name, by in (
        ("acme/one", envs),
        ("acme/two", envs),
        ("acme/three", envs),
        ("acme/four", other),
    ):
        url = publish(env_harness, env_repo(env_harness.root / name, wheelhouse), name)
        commit = head(env_harness, url)
        built[name] = by.ensure(recipe_at(env_harness, url, commit, name), commit).image
    assert built["acme/four"].owner == other.owner
    assert {built[n].owner for n in ("acme/one", "acme/two", "acme/three")} == {envs.owner}

    # acme/one: a live run holds it (no container on it now).
    live = env_harness.store.create(requester="U1", repo="acme/one", request="x")
    envs.lease(built["acme/one"], f"{env_harness.store.identity}|{live.id}")
    # acme/two and acme/three: their runs are over...
    for name in ("acme/two", "acme/three"):
        done = env_harness.store.create(requester="U1", repo=name, request="y")
        env_harness.store.transition(done.id, RunStatus.CANCELLED, by="test")
        envs.lease(built[name], f"{env_harness.store.identity}|{done.id}")
        envs.touch(built[name])  # used after acme/one, acme/three last
    # ...but a run's sandbox still runs on acme/two.
    url = env_harness.forge.clone_url("acme/two")
    recipe = recipe_at(env_harness, url, built["acme/two"].commit, "acme/two")
    sandbox, pooled = envs.open("7", recipe, built["acme/two"], built["acme/two"].commit)
    try:
        assert not pooled
        removed = collect_images(
            envs, budget=1, is_live=lease_checker(env_harness.store, envs.max_age)
        )
    finally:
        sandbox.close()
    assert [image.repo for image in removed] == ["acme/three"]
    left = {image.repo for image in envs.engine.images() if image.owner in env_owners}
    assert left == {"acme/one", "acme/two", "acme/four"}


def test_the_upkeep_rebuilds_when_the_default_branch_changes_a_key_file(
    env_harness: EnvHarness, wheelhouse: Path
) -> None:
    url = publish(env_harness, env_repo(env_harness.root / "src", wheelhouse))
    envs = env_harness.envs
    old = head(env_harness, url)
    first = envs.ensure(recipe_at(env_harness, url, old), old).image
    assert refresh_default_branch(env_harness.deps, "acme/retrying") is None  # current

    work = env_harness.root / "work"
    git(env_harness.root, "clone", "-q", url, str(work))
    (work / "requirements.txt").write_text((work / "requirements.txt").read_text() + "# v2\n")
    new = commit_all(work, "change a key file")
    git(work, "push", "-q", "origin", "HEAD:main")
    rebuilt = refresh_default_branch(env_harness.deps, "acme/retrying")
    assert rebuilt is not None
    assert rebuilt.built
    assert rebuilt.image.commit == new
    assert rebuilt.image.key != first.key
    # A run on the new head now finds it built: it does not wait for anything.
    ready = envs.ensure(recipe_at(env_harness, url, new), new)
    assert not ready.built
    assert ready.waited == 0.0

    # After the maximum age the same key is rebuilt, in the background.
    envs.max_age = 0.0
    again = refresh_default_branch(env_harness.deps, "acme/retrying")
    assert again is not None
    assert again.built
    assert again.image.key == rebuilt.image.key
    assert again.image.id != rebuilt.image.id
    assert envs.engine.find(rebuilt.image.key) == again.image
