"""Removes sandbox containers nobody will use again, and never a live sibling's.

A container is removed when its run is final, when its expiry has passed, or when
its owner process is dead (judged only for owners this process can see: same host,
same boot, same pid namespace; see :mod:`sandboxes.owner`). The list of containers
only nominates candidates: each one is inspected again and judged again, with the
clock and the owner's liveness read at that moment, right before it is removed.

A warm pool's container (:mod:`sandboxes.pool`) carries no run: once claimed, its
claim names the run and owner and it is judged like any other; while idle, it goes
when it has waited too long, and the pool's own :meth:`~sandboxes.pool.WarmPool.trim`
keeps each pool within its size. Without the pool's claims (no Redis) pool
containers are left alone, except for their expiry.

``agents reap`` runs one pass; workers run it when they start and then periodically
with :class:`ReaperThread`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import docker
import docker.errors
from docker.models.containers import Container

from process.periodic import Periodic
from sandboxes import labels
from sandboxes.egress_proxy import NETWORK_LABEL, remove_network
from sandboxes.owner import Owner

if TYPE_CHECKING:  # the pool needs Redis; a reaper without one must not import it
    from sandboxes.pool import WarmPool

log = logging.getLogger(__name__)

#: Is this run finished for good? None when the caller cannot tell.
IsFinal = Callable[[str], bool | None]
Clock = Callable[[], datetime]

REASON_FINAL = "run is final"
REASON_EXPIRED = "expired"
REASON_OWNER_DEAD = "owner is dead"
REASON_POOL_IDLE = "idle in the warm pool too long"


@dataclass(frozen=True)
class Removal:
    container_id: str
    name: str
    run_id: str
    reason: str


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Reaper:
    """One pass over this engine's sandbox containers: :meth:`reap`."""

    def __init__(
        self,
        client: docker.DockerClient,
        *,
        is_final: IsFinal | None = None,
        store: str = "",
        clock: Clock = _utcnow,
        pool: WarmPool | None = None,
    ) -> None:
        self.client = client
        self.pool = pool
        self.is_final = is_final
        #: ``is_final`` speaks for this store only; other stores' runs are judged by
        #: expiry and owner alone.
        self.store = store
        self.clock = clock

    def reason(self, container_labels: dict[str, str], container_id: str = "") -> str | None:
        """Why a container with these labels should go now, or None to leave it alone."""
        if container_labels.get(labels.POOL):
            return self._pool_reason(container_labels, container_id)
        run_id = container_labels.get(labels.RUN_ID)
        if run_id is None:
            return None
        return self._run_reason(run_id, container_labels)

    def _pool_reason(self, container_labels: dict[str, str], container_id: str) -> str | None:
        expires = labels.parse_time(container_labels.get(labels.EXPIRES_AT))
        if expires is not None and self.clock() >= expires:
            return REASON_EXPIRED
        if self.pool is None or not container_id:
            return None
        if container_labels.get(labels.STORE, "") != self.store:
            # Another store's pool: its claims are in its own Redis, so here every one of
            # its containers would look unclaimed, and a claimed one idle. Its own
            # workers judge it; expiry above holds for everyone.
            return None
        claim = self.pool.claim_of(container_id)
        if claim is None:
            age = self.pool.idle_age(container_labels)
            return REASON_POOL_IDLE if age is not None and age > self.pool.idle_seconds else None
        claimed = {
            **container_labels,
            labels.STORE: claim.store,
            labels.OWNER: claim.owner,
            labels.OWNER_PROCESS: claim.owner_process,
        }
        if not claim.run_id.isdigit():  # being removed by a pool's trim
            return None
        return self._run_reason(claim.run_id, claimed)

    def _run_reason(self, run_id: str, container_labels: dict[str, str]) -> str | None:
        expires = labels.parse_time(container_labels.get(labels.EXPIRES_AT))
        if expires is not None and self.clock() >= expires:
            return REASON_EXPIRED
        owner = Owner.from_labels(
            container_labels.get(labels.OWNER, ""), container_labels.get(labels.OWNER_PROCESS, "")
        )
        if owner is not None and owner.is_alive() is False:
            return REASON_OWNER_DEAD
        mine = container_labels.get(labels.STORE, "") == self.store
        if self.is_final is not None and mine and self.is_final(run_id):
            return REASON_FINAL
        return None

    def reap(self) -> list[Removal]:
        """Remove every sandbox container that should go; report what was removed."""
        removed: list[Removal] = []
        candidates = self.client.containers.list(
            all=True, filters={"label": labels.RUN_ID}, ignore_removed=True
        )
        for candidate in candidates:
            if self.reason(dict(candidate.labels), str(candidate.id)) is None:
                continue
            removal = self._remove_if_still_due(str(candidate.id))
            if removal is not None:
                removed.append(removal)
        return removed

    def remove_run(self, run_id: str, *, wait: float = 10.0) -> list[Removal]:
        """Remove one run's containers, as soon as the reaper's own rules allow.

        For cleaning up after a cancel: the stopped job needs a moment to die, so each
        container is judged again for up to ``wait`` seconds. A live owner's container,
        or one on another machine, is left to its own reaper.
        """
        removed: list[Removal] = []
        found = self.client.containers.list(
            all=True, filters={"label": f"{labels.RUN_ID}={run_id}"}, ignore_removed=True
        )
        if self.pool is not None:  # pool containers the run claimed
            for container in self.client.containers.list(
                filters={"label": labels.POOL}, ignore_removed=True
            ):
                claim = self.pool.claim_of(str(container.id))
                if claim is not None and claim.run_id == run_id:
                    found.append(container)
        for container in found:
            deadline = time.monotonic() + wait
            while (
                self.reason(dict(container.labels), str(container.id)) is None
                and time.monotonic() < deadline
            ):
                time.sleep(0.2)
            removal = self._remove_if_still_due(str(container.id))
            if removal is not None:
                removed.append(removal)
        return removed

    def prune_volumes(self) -> list[str]:
        """Remove sandbox workspace volumes no container uses any more; return their names.

        Volumes go with their container normally; this catches containers removed by
        hand without ``-v``. ``docker volume prune`` skips volumes created with driver
        options (our tmpfs ones), so they are removed one by one; the engine refuses to
        remove a volume that is in use.
        """
        removed = []
        for volume in self.client.volumes.list(filters={"label": labels.RUN_ID, "dangling": True}):
            try:
                volume.remove()
            except docker.errors.NotFound:
                continue
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # in use after all
                    continue
                raise
            log.info("pruned sandbox volume %s", volume.name)
            removed.append(str(volume.name))
        return removed

    def prune_networks(self) -> list[str]:
        """Remove setup networks (:mod:`sandboxes.egress_proxy`) by the same rules as
        containers, from their own labels: a dead worker leaves its sandbox's network
        behind, with the proxy still on it."""
        removed = []
        found = self.client.networks.list(filters={"label": [labels.RUN_ID, f"{NETWORK_LABEL}=1"]})
        for network in found:
            if self.reason(dict(network.attrs.get("Labels") or {})) is None:
                continue
            if remove_network(self.client, network):
                log.info("pruned setup network %s", network.name)
                removed.append(str(network.name))
        return removed

    def _remove_if_still_due(self, container_id: str) -> Removal | None:
        try:
            container: Container = self.client.containers.get(container_id)
        except docker.errors.NotFound:
            return None
        found = dict(container.labels)
        reason = self.reason(found, container_id)
        if reason is None:
            return None
        if reason == REASON_POOL_IDLE and self.pool is not None:
            if not self.pool.remove_idle(container):
                return None  # a run claimed it meanwhile
            return Removal(container_id, str(container.name), "", reason)
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # already being removed, by auto_remove or a sibling
                return None
            raise
        claim = self.pool.claim_of(container_id) if self.pool and found.get(labels.POOL) else None
        removal = Removal(
            container_id=container_id,
            name=str(container.name),
            run_id=claim.run_id if claim else found.get(labels.RUN_ID, ""),
            reason=reason,
        )
        log.info("reaped sandbox %s of run %s: %s", removal.name, removal.run_id, removal.reason)
        return removal


class ReaperThread(Periodic):
    """Runs :meth:`Reaper.reap` now and then every ``interval`` seconds until stopped."""

    def __init__(self, reaper: Reaper, interval: float = 300.0) -> None:
        self.reaper = reaper
        super().__init__("sandbox-reaper", interval, self._pass)

    def _pass(self) -> None:
        self.reaper.reap()
        self.reaper.prune_volumes()
        self.reaper.prune_networks()
