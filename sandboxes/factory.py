"""Choosing a backend, so that "Docker is broken" never quietly becomes "no isolation".

``docker`` and ``local`` are explicit. ``auto`` picks Docker whenever Docker is
configured (``DOCKER_HOST`` is set or the default socket exists) and then insists it
works; only a machine with no Docker configured at all gets the local backend, which
warns loudly each time it starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import docker
import docker.errors

from process.exceptions import SandboxStartFailed
from sandboxes import engine
from sandboxes.cache import WorkspaceArchive
from sandboxes.config import EgressConfig, SandboxConfig
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.local_sandbox import LocalSandbox
from sandboxes.protocol import Sandbox

Backend = Literal["auto", "docker", "local"]
DEFAULT_SOCKET = Path("/var/run/docker.sock")


def docker_configured(
    environ: Mapping[str, str] = os.environ, socket: Path = DEFAULT_SOCKET
) -> bool:
    """Whether this machine is set up to use Docker, working or not."""
    return bool(environ.get("DOCKER_HOST")) or socket.exists()


def create_sandbox(
    run_id: str,
    config: SandboxConfig | None = None,
    *,
    workspace: WorkspaceArchive | None = None,
    backend: Backend = "docker",
    client: docker.DockerClient | None = None,
    egress: EgressConfig | None = None,
    environ: Mapping[str, str] = os.environ,
    socket: Path = DEFAULT_SOCKET,
) -> Sandbox:
    """A sandbox for ``run_id``, not started yet. Raises :class:`SandboxStartFailed`
    when ``auto`` finds Docker configured but not answering."""
    if backend == "local" or (backend == "auto" and not docker_configured(environ, socket)):
        return LocalSandbox(run_id, config, workspace=workspace)
    if backend == "auto" and client is None:
        _check_docker(run_id, environ)
    return DockerSandbox(run_id, config, workspace=workspace, client=client, egress=egress)


def _check_docker(run_id: str, environ: Mapping[str, str]) -> None:
    where = environ.get("DOCKER_HOST") or engine.DEFAULT_HOST
    try:
        client = engine.connect(environ)
    except docker.errors.DockerException as exc:
        raise SandboxStartFailed(run_id, _broken(where, exc)) from exc
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        raise SandboxStartFailed(run_id, _broken(where, exc)) from exc
    finally:
        client.close()


def _broken(where: str, exc: Exception) -> str:
    return (
        f"Docker is configured ({where}) but not working: {exc}. Fix Docker; the local "
        "backend, which does not isolate, is only used when chosen explicitly"
    )
