"""Garbage collection of environment images, within ``AGENTS_ENV_DISK_BUDGET``.

Images a newer build of their key superseded go first, once no container uses them;
then, while the images' own bytes (what removing them frees, not the base layers they
share) are over the budget, the least recently used. An image is never removed while
a live run uses it: a container started from it exists (an idle pool container does
not count: it is removed with the image), or a run that is not final holds a lease on
its key (:meth:`~jobs.environments.service.Environments.lease`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from jobs.environments.service import Environments
from sandboxes import labels
from sandboxes.env_images import EnvImage

log = logging.getLogger(__name__)

#: ``"<store>|<run id>"``, lease time -> whether that run still lives.
IsLive = Callable[[str, float], bool]


def in_use(envs: Environments, image: EnvImage, is_live: IsLive, newest: bool) -> bool:
    """Whether a live run uses ``image`` (``newest``: it is its key's current one)."""
    for container_id, found in envs.engine.containers_using(image.id):
        if not found.get(labels.POOL):
            return True  # a run's sandbox or a build
        if envs.pool.claim_of(container_id) is not None:
            return True  # a pool container a run claimed; an idle one goes with the image
    if not newest:
        return False
    return any(is_live(holder, at) for holder, at in envs.leases(image.key).items())


def collect_images(envs: Environments, budget: int, is_live: IsLive) -> list[EnvImage]:
    """Remove what the budget and supersession allow; returns the images removed."""
    images = envs.engine.images(owner=envs.owner)  # another store's leases are not ours to read
    sizes = envs.engine.unique_sizes()
    newest: dict[str, str] = {}
    for image in images:  # newest first
        newest.setdefault(image.key, image.id)
    total = sum(sizes.get(image.id, 0) for image in images)

    def order(image: EnvImage) -> tuple[int, float]:
        superseded = newest[image.key] != image.id
        used = envs.last_used(image.key) or image.created_at.timestamp()
        return (0 if superseded else 1, used)

    removed: list[EnvImage] = []
    for image in sorted(images, key=order):
        current = newest[image.key] == image.id
        if current and total <= budget:
            break
        if in_use(envs, image, is_live, current):
            continue
        envs.pool.drain(image.id)
        if envs.engine.remove(image):
            removed.append(image)
            total -= sizes.get(image.id, 0)
            if current:
                log.info(
                    "environment %s of %s removed: over the %d MiB budget, least recently used",
                    image.short_key,
                    image.repo,
                    budget // (1024 * 1024),
                )
    return removed
