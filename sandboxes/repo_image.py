"""Building a repository's own Dockerfile on the worker's engine, through the API.

The context is the commit's files (``git archive`` from the mirror), nothing is
pulled (``FROM`` images must be on the engine already, and allowed: see
:mod:`jobs.environments.dockerfile`), the build is given no network (the caller
passes ``none``: setup's network goes only through the egress proxy), and its memory is
capped like a sandbox's. The image is then only
the base an environment is built on: its setup runs as uid 1000 in a hardened sandbox.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

import docker
import docker.errors

from process.exceptions import ImageBuildFailed
from sandboxes.output_ends import output_ends

#: Lines of build output kept from the start (the rest is a rolling tail).
HEAD_LINES = 8


def build_repo_image(
    client: docker.DockerClient,
    *,
    context: bytes,
    dockerfile: str,
    tag: str,
    build_args: Mapping[str, str],
    image_labels: Mapping[str, str],
    network: str,
    memory_mb: int,
    timeout: float,
) -> str:
    """Build and tag the image; returns its id. :class:`ImageBuildFailed` names the step
    that failed with the first and last lines of the build's output."""
    head: list[str] = []
    tail: deque[str] = deque(maxlen=HEAD_LINES)
    memory = memory_mb * 1024 * 1024
    try:
        lines: Iterator[dict[str, Any]] = client.api.build(
            fileobj=io.BytesIO(context),
            custom_context=True,
            dockerfile=dockerfile,
            tag=tag,
            buildargs=dict(build_args),
            labels=dict(image_labels),
            pull=False,
            rm=True,
            forcerm=True,
            network_mode=network,
            container_limits={"memory": memory, "memswap": memory},
            decode=True,
            timeout=int(timeout),
        )
        for line in lines:
            if "error" in line:
                detail = str(line.get("errorDetail", {}).get("message") or line["error"]).strip()
                shown = output_ends("\n".join([*head, *tail]), HEAD_LINES)
                raise ImageBuildFailed(f"`docker build` of {dockerfile} failed: {detail}\n{shown}")
            for text in str(line.get("stream", "")).splitlines():
                if not text.strip():
                    continue
                if len(head) < HEAD_LINES:
                    head.append(text)
                else:
                    tail.append(text)
    except docker.errors.DockerException as exc:
        raise ImageBuildFailed(f"`docker build` of {dockerfile} failed: {exc}") from exc
    try:
        return str(client.images.get(tag).id)
    except docker.errors.ImageNotFound:
        raise ImageBuildFailed(f"`docker build` of {dockerfile} produced no image") from None
