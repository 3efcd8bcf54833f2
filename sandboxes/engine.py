"""Connecting to the Docker engine named by the environment (``DOCKER_HOST`` or the socket)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

import docker
import docker.errors

DEFAULT_HOST = "unix:///var/run/docker.sock"

log = logging.getLogger(__name__)


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


def try_connect(environ: Mapping[str, str] = os.environ) -> docker.DockerClient | None:
    """A client for an engine that answers a ping, or None (with the reason logged)."""
    try:
        client = connect(environ)
    except docker.errors.DockerException as exc:
        log.info("no Docker engine: %s", exc)
        return None
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        log.info("the Docker engine does not answer: %s", exc)
        client.close()
        return None
    return client


def image_id(image: str) -> str | None:
    """The image's id on the configured engine, or None if it cannot be read."""
    client = try_connect()
    if client is None:
        return None
    try:
        return str(client.images.get(image).id)
    except docker.errors.DockerException:
        return None
    finally:
        client.close()
