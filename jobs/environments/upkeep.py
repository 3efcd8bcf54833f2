"""The worker's environment upkeep: rebuilds in the background, pools kept filled and
within limits, images kept within the disk budget.

One thread per worker (:class:`EnvironmentUpkeep`). It wakes every ``interval``
seconds, or at once when a run nudges it (a pool container was claimed, an
environment is older than ``AGENTS_ENV_MAX_AGE``), and then:

1. refills every recently used pool to ``AGENTS_WARM_POOL`` idle containers;
2. rebuilds, for each repository with a recently used environment, the environment
   of its default branch's head when that head's key has none yet (its dependency
   inputs changed) or when the newest one is older than the maximum age. Runs keep
   using the current environment meanwhile; the build takes the same lock a run
   would, so a run needing that key waits for it instead of building it twice;
3. collects environment images beyond ``AGENTS_ENV_DISK_BUDGET``
   (:mod:`jobs.environments.collect`) and trims the pools.

Each step is guarded: a failure is logged and the next pass tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from jobs.blueprint.deps import Deps
from jobs.blueprint.sandbox import sandbox_config
from jobs.blueprint.steps.prepare import config_at
from jobs.environments.collect import IsLive, collect_images
from jobs.environments.dockerfile import allowed_bases
from jobs.environments.recipe import Recipe
from jobs.environments.service import Environments, Ready
from process.exceptions import RepoConfigError, StepFailed
from runs.store import RunStore

log = logging.getLogger(__name__)

#: Rebuilds the default-branch environments of these repositories.
Rebuild = Callable[[list[str]], None]


def default_branch_recipe(deps: Deps, envs: Environments, repo: str) -> tuple[Recipe, str] | None:
    """The recipe of ``repo``'s default-branch head (mirror refreshed), and the head;
    None when the repository has no setup to build. Raises :class:`StepFailed` for a
    configuration that cannot be read."""
    url = deps.forge.clone_url(repo)
    deps.cache.mirror(url, auth_header=deps.git_auth(url))
    head = deps.cache.resolve(url, f"refs/heads/{deps.forge.default_branch(repo)}")
    config, _ = config_at(deps, url, head)
    if not config.has_environment:
        return None
    try:
        recipe = envs.plan(
            repo=repo,
            url=url,
            commit=head,
            config=config,
            sandbox=sandbox_config(deps.config.sandbox, config),
            allowed_bases=allowed_bases(deps.config.sandbox.image, config),
        )
    except RepoConfigError as err:
        raise StepFailed(str(err)) from None
    return recipe, head


def refresh_default_branch(deps: Deps, repo: str) -> Ready | None:
    """Build the environment of ``repo``'s default-branch head if its key has none, or
    the newest is stale; None when nothing needed building."""
    envs = deps.environments
    if envs is None:
        return None
    found = default_branch_recipe(deps, envs, repo)
    if found is None:
        return None
    recipe, head = found
    current = envs.engine.find(recipe.key)
    if current is not None and not envs.stale(current):
        return None
    why = "it is older than the maximum age" if current else "its dependency inputs changed"
    log.info("rebuilding the environment of %s at %s: %s", repo, head[:12], why)
    ready = envs.ensure(recipe, head, built_after=current.created_at if current else None)
    if current is not None:
        envs.move_pools(current.id, ready.image.id)
    return ready


def lease_checker(store: RunStore, max_age: float) -> IsLive:
    """Whether a lease's run still lives: asked of ``store`` for its own runs; another
    store's lease counts until it is ``max_age`` old."""

    def live(holder: str, at: float) -> bool:
        identity, _, run_id = holder.rpartition("|")
        if identity == store.identity:
            final = store.is_final(run_id)
            if final is not None:
                return not final
        return time.time() - at < max_age

    return live


class EnvironmentUpkeep:
    """The thread; :meth:`run_once` is one pass (tests call it directly)."""

    def __init__(
        self,
        envs: Environments,
        *,
        budget: int,
        is_live: IsLive,
        rebuild: Rebuild | None = None,
        interval: float = 300.0,
    ) -> None:
        self.envs = envs
        self.budget = budget
        self.is_live = is_live
        self.rebuild = rebuild
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="env-upkeep", daemon=True)
        self._scanned = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            scan = time.monotonic() - self._scanned >= self.interval
            self.run_once(scan=scan)
            if scan:
                self._scanned = time.monotonic()
            self._sleep()

    def _sleep(self) -> None:
        """Until the next pass: ``interval``, or a run's nudge, or :meth:`stop`."""
        deadline = time.monotonic() + self.interval
        wake = self.envs.key("wake")
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if self.envs.redis.blpop([wake], timeout=1):
                    return
            except Exception:  # Redis away: wait and try again
                log.warning("environment upkeep: Redis is not answering")
                self._stop.wait(1)

    def run_once(self, *, scan: bool = True) -> None:
        """Refill pools, rebuild what needs it (``scan``: every recently used repository,
        else only those asked for), collect images, trim pools."""
        for name, step in (
            ("refilling pools", self.refill),
            ("rebuilding environments", lambda: self.rebuild_due(scan=scan)),
            ("collecting images", lambda: collect_images(self.envs, self.budget, self.is_live)),
            ("trimming pools", lambda: self.envs.pool.trim(self.envs.pool_size, self.envs.max_age)),
        ):
            try:
                step()
            except Exception:
                log.exception("environment upkeep: %s failed; the next pass tries again", name)

    def refill(self) -> int:
        """Start idle containers in every recently used pool; how many were started."""
        envs = self.envs
        if envs.pool_size <= 0:
            return 0
        started = 0
        for pid, config in envs.pool.configs().items():
            used = envs.pool.last_used(pid)
            if used is None or time.time() - used.timestamp() > envs.max_age:
                continue
            if envs.image_id(config.image) is None:  # its image was removed
                envs.pool.forget(pid)
                continue
            started += envs.pool.fill(config, envs.pool_size)
        return started

    def rebuild_due(self, *, scan: bool) -> list[str]:
        """Ask for rebuilds of the repositories that asked, and (``scan``) of every one
        with a recently used environment; returns the repositories looked at."""
        if self.rebuild is None:
            return []
        repos = set(self.envs.take_rebuild_requests())
        if scan:
            repos |= self.recent_repos()
        if repos:
            self.rebuild(sorted(repos))
        return sorted(repos)

    def recent_repos(self) -> set[str]:
        now = time.time()
        found = set()
        for image in self.envs.engine.images():
            used = self.envs.last_used(image.key)
            if image.repo and used is not None and now - used <= self.envs.max_age:
                found.add(image.repo)
        return found


def rebuilder(open_deps: Callable[[], Any]) -> Rebuild:
    """A :data:`Rebuild` that opens a job's dependencies (forge, cache, environments)
    for each pass and refreshes each repository's default-branch environment."""

    def rebuild(repos: list[str]) -> None:
        with open_deps() as deps:
            for repo in repos:
                try:
                    refresh_default_branch(deps, repo)
                except Exception as err:
                    log.warning("environment of %s not rebuilt: %s", repo, err)

    return rebuild
