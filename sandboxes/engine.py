"""Connecting to the Docker engine named by the environment (``DOCKER_HOST`` or the socket)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import docker
import docker.errors

DEFAULT_HOST = "unix:///var/run/docker.sock"


def connect(environ: Mapping[str, str] = os.environ) -> docker.DockerClient:
    """A client for the configured engine; raises ``DockerException`` if it cannot connect.

    A unix socket is tried first with a socket of our own: docker-py leaks its socket
    when the connection is refused, which shows up later as a ResourceWarning.
    """
    host = environ.get("DOCKER_HOST") or DEFAULT_HOST
    if host.startswith("unix://"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(10)
            try:
                probe.connect(host.removeprefix("unix://"))
            except OSError as exc:
                raise docker.errors.DockerException(
                    f"cannot connect to {host}: {exc.strerror or exc}"
                ) from exc
    return docker.DockerClient.from_env(environment=dict(environ))
