"""Environment images on the worker's Docker engine: a repository's checkout plus what
its setup installed, committed from the container that ran setup.

An image is named ``agents-env:<key>`` (the first 32 hex digits of the environment's
key, :mod:`jobs.environments.keys`) and labelled with the key, the repository, the
commit its checkout holds, when it was built and how long that took. The labels are
the only index: whatever lists, finds or removes environments asks the engine, so
several workers sharing one engine see the same environments, and a worker on another
engine builds its own.

Rebuilding a key (after ``AGENTS_ENV_MAX_AGE``) moves the tag to the new image; the
old one stays, untagged but labelled, until nothing uses it and garbage collection
(:mod:`jobs.environments.collect`) removes it. :meth:`EnvEngine.find` always picks
the newest.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import docker
import docker.errors
import redis
from docker.models.containers import Container

from sandboxes import engine, labels
from sandboxes.cache import WorkspaceArchive
from sandboxes.checkout import Checkout
from sandboxes.config import EgressConfig, SandboxConfig
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.pool import WarmPool
from sandboxes.repo_image import build_repo_image

log = logging.getLogger(__name__)

REPOSITORY = "agents-env"
#: Where a repository's own Dockerfile is built to, before setup runs on it.
BASE_REPOSITORY = "agents-env-base"
#: Hex digits of the key in the tag: enough to never collide, short enough to read.
TAG_DIGITS = 32


@dataclass(frozen=True)
class EnvImage:
    """One environment image as its labels describe it."""

    id: str
    key: str
    repo: str
    #: The run store whose environments these are (:data:`labels.ENV_OWNER`).
    owner: str
    commit: str
    created_at: datetime
    build_seconds: float
    inputs: str
    tags: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.tags[0] if self.tags else self.id

    @property
    def short_key(self) -> str:
        return self.key[:12]


def tag_for(key: str) -> str:
    return key[:TAG_DIGITS]


def image_labels(
    key: str,
    repo: str,
    owner: str,
    commit: str,
    built_at: datetime,
    build_seconds: float,
    inputs: list[str],
) -> dict[str, str]:
    return {
        labels.ENV_KEY: key,
        labels.ENV_REPO: repo,
        labels.ENV_OWNER: owner,
        labels.ENV_COMMIT: commit,
        labels.ENV_CREATED_AT: built_at.isoformat(timespec="seconds"),
        labels.ENV_BUILD_SECONDS: f"{build_seconds:.1f}",
        labels.ENV_INPUTS: ",".join(inputs)[:2000],
    }


def _from_attrs(attrs: dict[str, Any]) -> EnvImage | None:
    found = (attrs.get("Config") or {}).get("Labels") or attrs.get("Labels") or {}
    key = found.get(labels.ENV_KEY)
    if not key:
        return None
    created = labels.parse_time(found.get(labels.ENV_CREATED_AT)) or datetime.fromtimestamp(0, UTC)
    try:
        seconds = float(found.get(labels.ENV_BUILD_SECONDS) or 0)
    except ValueError:
        seconds = 0.0
    tags = tuple(t for t in (attrs.get("RepoTags") or []) if t and t != "<none>:<none>")
    return EnvImage(
        id=str(attrs.get("Id")),
        key=str(key),
        repo=str(found.get(labels.ENV_REPO, "")),
        owner=str(found.get(labels.ENV_OWNER, "")),
        commit=str(found.get(labels.ENV_COMMIT, "")),
        created_at=created,
        build_seconds=seconds,
        inputs=str(found.get(labels.ENV_INPUTS, "")),
        tags=tags,
    )


class EnvEngine:
    """The Docker engine environments live on, for the brain (which never imports
    Docker): their images, sandboxes on them, a repository's image builds, the pools."""

    def __init__(self, client: docker.DockerClient, egress: EgressConfig | None = None) -> None:
        """``egress``: the engine's egress proxy, which sandboxes whose setup may use
        the network reach the outside through."""
        self.client = client
        self.egress = egress
        self._id: str | None = None

    @classmethod
    def try_connect(cls, egress: EgressConfig | None = None) -> EnvEngine | None:
        """The configured engine (``DOCKER_HOST`` or the socket) if it answers."""
        client = engine.try_connect()
        return None if client is None else cls(client, egress)

    def close(self) -> None:
        self.client.close()

    @property
    def id(self) -> str:
        """The engine's id, short and safe for Redis keys: images are per engine."""
        if self._id is None:
            raw = str(self.client.info().get("ID") or "engine")
            self._id = re.sub(r"[^A-Za-z0-9]", "", raw)[:16] or "engine"
        return self._id

    # -- images -------------------------------------------------------------------------

    def images(self, key: str | None = None, owner: str | None = None) -> list[EnvImage]:
        """Every environment image on the engine (or of one key, or one owner's), newest
        first."""
        wanted = [f"{labels.ENV_KEY}={key}" if key else labels.ENV_KEY]
        if owner is not None:
            wanted.append(f"{labels.ENV_OWNER}={owner}")
        found = []
        # The engine's summaries, not docker-py's images.list: that inspects each image
        # after listing them, and fails when one is removed in between (by another
        # worker's upkeep, say).
        for summary in self.client.api.images(filters={"label": wanted}):
            env = _from_attrs(summary)
            if env is not None:
                found.append(env)
        return sorted(found, key=lambda e: e.created_at, reverse=True)

    def find(self, key: str) -> EnvImage | None:
        """The newest image of ``key``, or None."""
        images = self.images(key)
        return images[0] if images else None

    def image_id(self, image: str) -> str | None:
        try:
            return str(self.client.images.get(image).id)
        except docker.errors.DockerException:
            return None

    def unique_sizes(self) -> dict[str, int]:
        """Bytes each environment image holds that no other image shares (what removing
        it frees), by image id, from the engine's disk usage report."""
        sizes: dict[str, int] = {}
        for image in self.client.df().get("Images") or []:
            if labels.ENV_KEY not in (image.get("Labels") or {}):
                continue
            size = int(image.get("Size") or 0)
            shared = int(image.get("SharedSize") or 0)
            sizes[str(image.get("Id"))] = max(size - max(shared, 0), 0)
        return sizes

    def containers_using(self, image_id: str) -> list[tuple[str, dict[str, str]]]:
        """The id and labels of every container (running or not) started from the image."""
        found = self.client.containers.list(
            all=True, filters={"ancestor": image_id}, ignore_removed=True
        )
        return [(str(c.id), dict(c.labels)) for c in found]

    def remove(self, image: EnvImage) -> bool:
        """Remove the image (never forced: the engine refuses while a container uses it),
        and its repository-Dockerfile base if nothing else uses that. True if it is gone."""
        try:
            self.client.images.remove(image.id, noprune=False)
        except docker.errors.ImageNotFound:
            return True
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                log.info("environment image %s is in use; kept", image.name)
                return False
            raise
        log.info("removed environment image %s of %s (%s)", image.name, image.repo, image.short_key)
        if not self.images(image.key):
            with contextlib.suppress(docker.errors.APIError):
                self.client.images.remove(f"{BASE_REPOSITORY}:{tag_for(image.key)}")
        return True

    # -- sandboxes and builds -----------------------------------------------------------

    def sandbox(
        self,
        run_id: str,
        config: SandboxConfig,
        *,
        workspace: WorkspaceArchive | None = None,
        checkout: Checkout | None = None,
        container: Container | None = None,
    ) -> DockerSandbox:
        """A sandbox on this engine (not started); ``container``: a claimed pool one."""
        return DockerSandbox(
            run_id,
            config,
            workspace=workspace,
            checkout=checkout,
            client=self.client,
            container=container,
            egress=self.egress,
        )

    def build_repo_image(self, **options: Any) -> str:
        """:func:`sandboxes.repo_image.build_repo_image` on this engine."""
        return build_repo_image(self.client, **options)

    def pool(self, connection: redis.Redis, prefix: str) -> WarmPool:
        return WarmPool(self.client, connection, prefix=prefix)
