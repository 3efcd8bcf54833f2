"""A warm pool: started, idle sandbox containers of an environment, for runs to claim.

Creating and starting a container costs a few hundred milliseconds; a pool's container
is already running, so a run that claims one only moves its checkout to the run's
commit. A pool is per sandbox configuration (the environment's image id, limits,
network, store), so a claimed container is exactly what the run would have created.

Claims go through Redis (``SET NX`` on the container's id): of several workers racing
for one container exactly one gets it, and the claim names the run and its owner
process. Docker labels cannot change after creation, so the reaper reads the claim to
judge a claimed container like any other run's sandbox; an unclaimed one is judged by
its age and the pool's size. Whoever removes an idle container claims it first, so a
run never claims one that is being removed.

Idle containers sleep for :data:`IDLE_SECONDS` plus the run's lifetime, and one is
only claimed while it is younger than ``IDLE_SECONDS - CLAIM_MARGIN``: a claimed
container always has its run's full lifetime ahead of it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
from docker.models.containers import Container

from sandboxes import container_spec, labels
from sandboxes.config import SandboxConfig
from sandboxes.owner import Owner

if TYPE_CHECKING:  # typing only: the reaper imports this module on workers without Redis
    import redis

log = logging.getLogger(__name__)

#: Seconds an idle container waits for a run before the pool replaces it.
IDLE_SECONDS = 3600
#: Seconds before that when it is no longer handed out.
CLAIM_MARGIN = 300
#: The claim a remover takes (never a run id: those are digits).
REMOVER = "pool-remover"


@dataclass(frozen=True)
class Claim:
    """Who took a pool container: the run and its owner process, as a sandbox's labels
    would say."""

    run_id: str
    store: str
    owner: str
    owner_process: str


def pool_id(config: SandboxConfig) -> str:
    """The pool a sandbox configuration draws from (the image id is in it)."""
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class WarmPool:
    """The pools of one Docker engine, with their claims in Redis under ``prefix``."""

    def __init__(
        self,
        client: docker.DockerClient,
        connection: redis.Redis,
        *,
        prefix: str = "agents",
        idle_seconds: int = IDLE_SECONDS,
    ) -> None:
        self.client = client
        self.redis = connection
        self.prefix = prefix
        self.idle_seconds = idle_seconds

    # -- keys ---------------------------------------------------------------------------

    def _claim_key(self, container_id: str) -> str:
        return f"{self.prefix}:pool:claim:{container_id}"

    def _used_key(self) -> str:
        return f"{self.prefix}:pool:used"

    def _config_key(self) -> str:
        return f"{self.prefix}:pool:configs"

    # -- claims -------------------------------------------------------------------------

    def _take(self, container_id: str, claim: Claim, ttl: int) -> bool:
        return bool(
            self.redis.set(
                self._claim_key(container_id), json.dumps(asdict(claim)), nx=True, ex=ttl
            )
        )

    def claim_of(self, container_id: str) -> Claim | None:
        raw = self.redis.get(self._claim_key(container_id))
        if raw is None:
            return None
        try:
            return Claim(**json.loads(_text(raw)))
        except (ValueError, TypeError):
            return None

    def claim(self, config: SandboxConfig, run_id: str) -> Container | None:
        """A started idle container of ``config``'s pool, now ``run_id``'s; or None."""
        pid = pool_id(config)
        self.redis.hset(self._used_key(), pid, datetime.now(UTC).timestamp())
        owner = Owner.current()
        claim = Claim(run_id, config.store, owner.label, owner.token)
        for container in self._idle(pid, fresh=True):
            ttl = config.max_lifetime + self.idle_seconds
            if self._take(str(container.id), claim, ttl):
                log.info("run %s claimed pool container %s", run_id, container.short_id)
                return container
        return None

    # -- filling ------------------------------------------------------------------------

    def remember(self, config: SandboxConfig) -> str:
        """Record ``config`` as a pool to keep filled; returns its id."""
        pid = pool_id(config)
        self.redis.hset(self._config_key(), pid, config.model_dump_json())
        self.redis.hset(self._used_key(), pid, datetime.now(UTC).timestamp())
        return pid

    def configs(self) -> dict[str, SandboxConfig]:
        """Every pool recorded with :meth:`remember`, by id."""
        found = {}
        for pid, raw in self.redis.hgetall(self._config_key()).items():
            try:
                found[_text(pid)] = SandboxConfig.model_validate_json(_text(raw))
            except ValueError:
                continue
        return found

    def last_used(self, pid: str) -> datetime | None:
        raw = self.redis.hget(self._used_key(), pid)
        return None if raw is None else datetime.fromtimestamp(float(_text(raw)), UTC)

    def forget(self, pid: str) -> None:
        self.redis.hdel(self._config_key(), pid)
        self.redis.hdel(self._used_key(), pid)

    def fill(self, config: SandboxConfig, size: int) -> int:
        """Start idle containers until ``config``'s pool has ``size``; returns how many
        were started."""
        pid = pool_id(config)
        missing = size - len(self._idle(pid, fresh=True))
        started = 0
        for _ in range(max(missing, 0)):
            now = datetime.now(UTC)
            lifetime = self.idle_seconds + config.max_lifetime
            options = container_spec.create_options(
                config,
                name=f"agents-pool-{pid[:8]}-{secrets.token_hex(3)}",
                container_labels={
                    labels.RUN_ID: "",
                    labels.STORE: config.store,
                    labels.OWNER: "",
                    labels.OWNER_PROCESS: "",
                    labels.CREATED_AT: now.isoformat(timespec="seconds"),
                    labels.EXPIRES_AT: (now + timedelta(seconds=lifetime)).isoformat(
                        timespec="seconds"
                    ),
                    labels.POOL: pid,
                },
                volume_run_id=f"pool-{pid}",
                lifetime=lifetime,
            )
            container = self.client.containers.create(**options)
            try:
                container.start()
            except docker.errors.DockerException:
                container.remove(force=True)
                raise
            started += 1
        if started:
            log.info("pool %s: started %d idle container(s)", pid, started)
        return started

    # -- keeping it within limits -------------------------------------------------------

    def idle_age(self, container_labels: dict[str, str]) -> float | None:
        created = labels.parse_time(container_labels.get(labels.CREATED_AT))
        return None if created is None else (datetime.now(UTC) - created).total_seconds()

    def _idle(self, pid: str | None, *, fresh: bool) -> list[Container]:
        """Running, unclaimed containers of one pool (or all), newest first; ``fresh``:
        only those young enough to hand out."""
        wanted = f"{labels.POOL}={pid}" if pid else labels.POOL
        found = []
        for container in self.client.containers.list(
            filters={"label": wanted}, ignore_removed=True
        ):
            age = self.idle_age(dict(container.labels))
            if age is None or (fresh and age > self.idle_seconds - CLAIM_MARGIN):
                continue
            if self.redis.exists(self._claim_key(str(container.id))):
                continue
            found.append((age, container))
        return [c for _, c in sorted(found, key=lambda pair: pair[0])]

    def remove_idle(self, container: Container) -> bool:
        """Remove an unclaimed container, claiming it first; False if a run has it."""
        claim = Claim(REMOVER, "", "", "")
        if not self._take(str(container.id), claim, 600):
            return False
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            return True  # already gone: removed is what was asked
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
        return True

    def trim(self, size: int, stale_after: float) -> list[str]:
        """Keep every pool within ``size`` idle containers, replace the ones idle too long,
        and empty pools nobody used for ``stale_after`` seconds. Returns the names of
        the containers removed."""
        now = datetime.now(UTC)
        removed: list[str] = []
        by_pool: dict[str, list[Container]] = {}
        for container in self._idle(None, fresh=False):
            by_pool.setdefault(dict(container.labels).get(labels.POOL, ""), []).append(container)
        for pid, containers in by_pool.items():
            used = self.last_used(pid)
            stale = used is None or (now - used).total_seconds() > stale_after
            keep = 0 if stale else size
            for index, container in enumerate(containers):
                age = self.idle_age(dict(container.labels)) or 0.0
                if index < keep and age <= self.idle_seconds:
                    continue
                if self.remove_idle(container):
                    removed.append(str(container.name))
            if stale:
                self.forget(pid)
        for pid in set(self.configs()) - set(by_pool):
            used = self.last_used(pid)
            if used is None or (now - used).total_seconds() > stale_after:
                self.forget(pid)
        return removed

    def drain(self, image_id: str) -> int:
        """Remove the idle containers started from an image (before removing it)."""
        removed = 0
        for container in self._idle(None, fresh=False):
            if str(container.attrs.get("Image", "")) == image_id and self.remove_idle(container):
                removed += 1
        return removed
