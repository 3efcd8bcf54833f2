"""Environments for runs: find the one a commit needs, build it once, open sandboxes on it.

:meth:`Environments.ensure` returns the newest image of the recipe's key, or builds it.
Workers build one key at most once: the build holds a Redis lock (renewed while it
runs, so a dead worker's lock lapses within :data:`LOCK_TTL`), and a run that arrives
meanwhile waits for it, told how long the last build took. A failed build is never
cached: its message is kept only for the runs that waited on that very attempt, and
the next run tries again. An image older than ``max_age`` is still used, and a
rebuild is asked of the worker's upkeep thread (:mod:`jobs.environments.upkeep`), so
no run waits for a rebuild while a current environment exists.

:meth:`Environments.open` starts a sandbox on the image, from a warm pool's idle
container when there is one, and moves its checkout to the run's commit.

Redis keys live under ``<prefix>:env:<engine id>``: images are per Docker engine.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from jobs.environments.builder import EgressListener, SetupRunner, build_environment
from jobs.environments.recipe import ImageId, Recipe, plan
from jobs.repo_config import RepoConfig
from process.exceptions import EnvironmentBuildFailed, SandboxStartFailed
from sandboxes.cache import RepoCache
from sandboxes.checkout import Checkout
from sandboxes.config import SandboxConfig
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.env_images import EnvEngine, EnvImage

log = logging.getLogger(__name__)

#: Seconds a build's lock lives without renewal.
LOCK_TTL = 60
#: Seconds between two looks of a waiting run at the lock.
POLL_SECONDS = 0.5
#: How long a failed attempt's message is kept for the runs that waited on it.
FAILURE_TTL = 3600
#: Largest pack of objects moved into an environment's checkout.
MAX_PACK = 256 * 1024 * 1024


@dataclass(frozen=True)
class Ready:
    """The environment a run uses, and whether this call built it."""

    image: EnvImage
    built: bool
    #: Seconds spent waiting for another worker's build of it.
    waited: float = 0.0


@dataclass(frozen=True)
class Building:
    """A build in progress, as a run waiting for it sees it."""

    started_at: datetime
    #: How long the repository's last build took, if there was one.
    expected_seconds: float | None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def namespace(prefix: str, engine: EnvEngine) -> str:
    """Where an engine's environment bookkeeping (locks, pools, leases) lives in Redis."""
    return f"{prefix}:env:{engine.id}"


class Environments:
    """The environments of one Docker engine. Dependencies are passed in."""

    def __init__(
        self,
        engine: EnvEngine,
        connection: redis.Redis,
        cache: RepoCache,
        *,
        setup: SetupRunner,
        image_id: ImageId | None = None,
        owner: str,
        prefix: str = "agents",
        pool_size: int = 1,
        max_age: float = 86400.0,
    ) -> None:
        """``owner``: the run store these environments serve (its nonce). The images it
        builds carry it, and only its own collector removes them, as only its Redis
        holds the leases of its runs."""
        self.engine = engine
        self.owner = owner
        self.redis = connection
        self.cache = cache
        self.setup = setup
        self.image_id = image_id or engine.image_id
        self.pool_size = pool_size
        self.max_age = max_age
        self.namespace = namespace(prefix, engine)
        self.pool = engine.pool(connection, self.namespace)

    # -- keys ---------------------------------------------------------------------------

    def key(self, *parts: str) -> str:
        return ":".join([self.namespace, *parts])

    # -- which environment --------------------------------------------------------------

    def plan(
        self,
        *,
        repo: str,
        url: str,
        commit: str,
        config: RepoConfig,
        sandbox: SandboxConfig,
        allowed_bases: Iterable[str],
    ) -> Recipe:
        return plan(
            self.cache,
            repo=repo,
            url=url,
            commit=commit,
            config=config,
            sandbox=sandbox,
            image_id=self.image_id,
            allowed_bases=allowed_bases,
        )

    def expected_seconds(self, repo: str) -> float | None:
        raw = self.redis.hget(self.key("durations"), repo)
        return None if raw is None else float(_text(raw))

    def builds(self, key: str) -> int:
        """How many times ``key`` was built on this engine (tests, ``agents env ls``)."""
        return int(_text(self.redis.hget(self.key("builds"), key) or 0))

    def stale(self, image: EnvImage) -> bool:
        return (datetime.now(UTC) - image.created_at).total_seconds() > self.max_age

    # -- building once ------------------------------------------------------------------

    def ensure(
        self,
        recipe: Recipe,
        source_commit: str,
        *,
        on_wait: Callable[[Building], None] | None = None,
        on_build: Callable[[float | None], None] | None = None,
        on_egress: EgressListener | None = None,
        built_after: datetime | None = None,
    ) -> Ready:
        """The newest image of ``recipe``'s key; built from ``source_commit`` if none (or,
        with ``built_after``, none built since then: a background rebuild).
        ``on_egress``: told where this call's build's setup reached through the egress
        proxy (the run records it), whether the build succeeded or not.

        Raises :class:`EnvironmentBuildFailed` when this call's build fails, or the
        build it waited for did.
        """
        lock = self.key("lock", recipe.key)
        waited_since: float | None = None
        while True:
            image = self._current(recipe.key, built_after)
            if image is not None:
                if built_after is None and self.stale(image):
                    self.request_rebuild(recipe.repo)
                waited = 0.0 if waited_since is None else time.monotonic() - waited_since
                return Ready(image, built=False, waited=waited)
            value = json.dumps(
                {"token": secrets.token_hex(8), "started": datetime.now(UTC).isoformat()}
            )
            if self.redis.set(lock, value, nx=True, ex=LOCK_TTL):
                return self._build_locked(
                    recipe, source_commit, lock, value, on_build, on_egress, built_after
                )
            holder = self.redis.get(lock)
            if holder is None:
                continue
            if waited_since is None:
                waited_since = time.monotonic()
                if on_wait is not None:
                    on_wait(self._building(_text(holder), recipe.repo))
            while self.redis.get(lock) == holder:
                time.sleep(POLL_SECONDS)
            failed = self.redis.get(self.key("failed", _text(holder)))
            if failed is not None:
                raise EnvironmentBuildFailed(_text(failed))

    def _current(self, key: str, built_after: datetime | None) -> EnvImage | None:
        image = self.engine.find(key)
        if image is None or (built_after is not None and image.created_at <= built_after):
            return None
        return image

    def _building(self, holder: str, repo: str) -> Building:
        try:
            started = datetime.fromisoformat(json.loads(holder)["started"])
        except (ValueError, KeyError, TypeError):
            started = datetime.now(UTC)
        return Building(started_at=started, expected_seconds=self.expected_seconds(repo))

    def _build_locked(
        self,
        recipe: Recipe,
        source_commit: str,
        lock: str,
        value: str,
        on_build: Callable[[float | None], None] | None,
        on_egress: EgressListener | None,
        built_after: datetime | None,
    ) -> Ready:
        renewal = _Renewal(self.redis, lock, value)
        try:
            image = self._current(recipe.key, built_after)  # finished while we looked
            if image is not None:
                return Ready(image, built=False)
            if on_build is not None:
                on_build(self.expected_seconds(recipe.repo))
            renewal.start()
            try:
                image = build_environment(
                    self.engine,
                    self.cache,
                    recipe,
                    source_commit,
                    self.setup,
                    self.owner,
                    on_egress=on_egress,
                )
            except EnvironmentBuildFailed as err:
                self.redis.set(self.key("failed", value), str(err), ex=FAILURE_TTL)
                raise
            self.redis.hset(self.key("durations"), recipe.repo, f"{image.build_seconds:.1f}")
            self.redis.hincrby(self.key("builds"), recipe.key, 1)
            self.touch(image)
            return Ready(image, built=True)
        finally:
            renewal.stop()
            _if_holding(self.redis, lock, value, lambda pipe: pipe.delete(lock))

    # -- sandboxes ----------------------------------------------------------------------

    def sandbox_config(self, recipe: Recipe, image: EnvImage) -> SandboxConfig:
        """The run's sandbox on ``image``: hardened like any (the repository's limits and
        variables are in ``recipe.sandbox``)."""
        return recipe.sandbox.with_changes(image=image.id, workspace_in_image=True)

    def open(
        self, run_id: str, recipe: Recipe, image: EnvImage, commit: str
    ) -> tuple[DockerSandbox, bool]:
        """A started sandbox on ``image`` with its checkout at ``commit``, and whether it
        came from the warm pool. The pool is asked to refill."""
        config = self.sandbox_config(recipe, image)
        if commit == image.commit:  # a new container is already checked out there
            checkout = Checkout(commit, already_there=True)
        else:
            pack = self.cache.pack_for(recipe.url, commit, image.commit, MAX_PACK)
            checkout = Checkout(commit, pack)
        self.touch(image)
        claimed = self.pool.claim(config, run_id) if self.pool_size > 0 else None
        if self.pool_size > 0:
            self.pool.remember(config)
            self.wake()
        if claimed is not None:
            sandbox = self.engine.sandbox(run_id, config, checkout=checkout, container=claimed)
            try:
                sandbox.start()
                return sandbox, True
            except SandboxStartFailed as err:  # it died idle: start a fresh one
                log.warning("run %s: the claimed pool container failed (%s)", run_id, err)
        sandbox = self.engine.sandbox(run_id, config, checkout=checkout)
        sandbox.start()
        return sandbox, False

    # -- bookkeeping for collection and upkeep ------------------------------------------

    def touch(self, image: EnvImage) -> None:
        """Record that ``image``'s key was used now (least recently used goes first)."""
        self.redis.zadd(self.key("used"), {image.key: time.time()})

    def lease(self, image: EnvImage, holder: str) -> None:
        """``holder`` (``<store>|<run id>``) uses ``image``'s key: collection keeps it
        while that run is not final."""
        self.redis.zadd(self.key("leases", image.key), {holder: time.time()})

    def leases(self, key: str) -> dict[str, float]:
        raw: list[Any] = self.redis.zrange(self.key("leases", key), 0, -1, withscores=True)
        return {_text(member): float(score) for member, score in raw}

    def last_used(self, key: str) -> float | None:
        score = self.redis.zscore(self.key("used"), key)
        return None if score is None else float(score)

    def request_rebuild(self, repo: str) -> None:
        self.redis.sadd(self.key("rebuild"), repo)
        self.wake()

    def take_rebuild_requests(self) -> list[str]:
        """The repositories whose rebuild runs asked for since the last call."""
        found = []
        while (raw := self.redis.spop(self.key("rebuild"))) is not None:
            found.append(_text(raw))
        return found

    def move_pools(self, old_image: str, new_image: str) -> None:
        """A rebuilt environment takes over its predecessor's pools: their idle
        containers go, and the same pools are kept filled from the new image."""
        for pid, config in self.pool.configs().items():
            if config.image == old_image:
                self.pool.forget(pid)
                self.pool.remember(config.with_changes(image=new_image))
        self.pool.drain(old_image)
        self.wake()

    def wake(self) -> None:
        """Nudge the upkeep thread (pool refills, rebuilds) now rather than at its next pass."""
        with self.redis.pipeline() as pipe:
            pipe.lpush(self.key("wake"), 1)
            pipe.ltrim(self.key("wake"), 0, 0)
            pipe.execute()


def _if_holding(
    connection: redis.Redis, lock: str, value: str, action: Callable[[Any], object]
) -> bool:
    """Run ``action`` on a transaction if ``lock`` still holds ``value`` (WATCH/MULTI, so
    it works on any Redis, and on fakeredis without Lua)."""
    pipe: Any
    with connection.pipeline() as pipe:
        try:
            pipe.watch(lock)
            if _text(pipe.get(lock) or b"") != value:
                return False
            pipe.multi()
            action(pipe)
            pipe.execute()
        except redis.WatchError:
            return False
    return True


class _Renewal:
    """Keeps a lock alive while a build runs, on a helper thread."""

    def __init__(self, connection: redis.Redis, lock: str, value: str) -> None:
        self._redis = connection
        self._lock = lock
        self._value = value
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="env-lock", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(LOCK_TTL / 3):
            try:
                _if_holding(
                    self._redis, self._lock, self._value, lambda p: p.expire(self._lock, LOCK_TTL)
                )
            except redis.RedisError:
                log.warning("could not renew the build lock %s", self._lock)
