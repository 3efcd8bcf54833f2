"""Driving the compose stack from tests: which compose, the images, one project's lifetime.

The images are tagged with a digest of their build context (and of the base image), and
labelled with it, so a second run with unchanged sources builds nothing. Wheels for the
Python packages are downloaded from uv.lock on this host (``deploy/build-wheels.sh``)
because containers here may reach no package index.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import docker
import docker.errors
import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
TEST_OVERRIDE = ROOT / "deploy" / "compose.test.yml"
OFFLINE_BASE = "agents-base:bookworm"
#: What the images are built from (the Dockerfiles' COPY sources); wheels are derived
#: from uv.lock, so they are left out.
CONTEXT = (
    "Dockerfile",
    ".dockerignore",
    "pyproject.toml",
    "uv.lock",
    "scripts/lockfile.py",
    "README.md",
    "process",
    "runs",
    "fakes",
    "jobs",
    "sandboxes",
    "bot",
    "cli",
    "examples",
    "deploy",
)
IMAGES = ("agents-app", "agents-redis", "agents-dashboard")
LABEL = "agents.context"
#: Settings the stack's processes would read from this process's environment.
SETTING_PREFIXES = ("AGENTS_", "SLACK_", "ANTHROPIC_", "GITHUB_", "REDIS_URL", "STACK_")


def compose_command() -> list[str]:
    """The compose CLI: the v2 plugin when present, else docker-compose (installed from
    Debian's packages when missing and this is root on Debian); skips if neither."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose") is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "docker-compose"],
            capture_output=True,
            check=False,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    if shutil.which("docker-compose") is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    return ["docker-compose"]


def context_digest(client: docker.DockerClient, base: str) -> str:
    """A digest of every file the images are built from, and of the base image."""
    digest = hashlib.sha256(client.images.get(base).id.encode())
    for name in CONTEXT:
        top = ROOT / name
        files = sorted(top.rglob("*")) if top.is_dir() else [top]
        for path in files:
            rel = path.relative_to(ROOT).as_posix()
            if not path.is_file() or "__pycache__" in rel or rel.startswith("deploy/wheels/"):
                continue
            digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def host_address(client: docker.DockerClient) -> str:
    """An address of this host that containers on any bridge network can reach: the one
    outgoing traffic leaves from (no packet is sent to find it), else the default
    bridge's gateway."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.254", 9))
            return str(probe.getsockname()[0])
    except OSError:  # no route out: the engine's own bridge is still this host
        return bridge_gateway(client)


def bridge_gateway(client: docker.DockerClient) -> str:
    """The host's address on the engine's default bridge. An engine restarted over an
    existing docker0 may leave ``Gateway`` out of the network's IPAM config (Docker
    20.10 does); the gateway is then the subnet's first address, as Docker assigns it."""
    config = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    if config.get("Gateway"):
        return str(config["Gateway"])
    return str(next(ipaddress.ip_network(config["Subnet"]).hosts()))


class Stack:
    """One compose project: its name, its environment, and the compose CLI."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str]) -> None:
        self.name = f"agentsct{uuid.uuid4().hex[:8]}"
        self.command = [*command, "-f", str(COMPOSE_FILE), "-f", str(TEST_OVERRIDE)]
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
        # The egress proxy's container and network names are fixed per deployment; the
        # project's own keep a proxy left by an earlier project, or a worker's default
        # proxy on the same engine, from blocking this one's `down`.
        self.env = {
            **inherited,
            "AGENTS_EGRESS_PROXY": f"{self.name}-egress-proxy",
            "AGENTS_EGRESS_NETWORK": f"{self.name}-egress",
            **env,
            "COMPOSE_PROJECT_NAME": self.name,
        }

    def run(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.command, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def logs(self) -> str:
        return self.run("logs", "--no-color", "--tail", "200", check=False).stdout

    def published_port(self, service: str, port: int) -> int:
        out = self.run("port", service, str(port)).stdout.strip()
        return int(out.rsplit(":", 1)[1])

    def containers(self, client: docker.DockerClient, service: str) -> list[str]:
        return [
            c.id
            for c in client.containers.list(
                all=True,
                filters={
                    "label": [
                        f"com.docker.compose.project={self.name}",
                        f"com.docker.compose.service={service}",
                    ]
                },
                ignore_removed=True,
            )
        ]

    def leftovers(self, client: docker.DockerClient) -> dict[str, list[str]]:
        """Containers, networks and volumes still carrying this project's name."""
        label = {"label": f"com.docker.compose.project={self.name}"}
        return {
            "containers": [
                c.name for c in client.containers.list(all=True, filters=label, ignore_removed=True)
            ],
            "networks": [n.name for n in client.networks.list(filters=label)]
            + [n.name for n in client.networks.list() if n.name.startswith(self.name)],
            "volumes": [v.name for v in client.volumes.list(filters=label)]
            + [v.name for v in client.volumes.list() if v.name.startswith(self.name)],
        }


def ensure_images(stack: Stack, client: docker.DockerClient, tag: str) -> bool:
    """Build the images unless ones labelled with this context digest exist; True if built."""

    def present(image: str) -> bool:
        try:
            found = client.images.get(f"{image}:{tag}")
        except docker.errors.ImageNotFound:
            return False
        return bool(found.labels.get(LABEL) == tag)

    if all(present(image) for image in IMAGES):
        return False
    wheels = subprocess.run(
        ["sh", str(ROOT / "deploy" / "build-wheels.sh")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert wheels.returncode == 0, wheels.stdout + wheels.stderr
    stack.run("--profile", "dashboard", "build", timeout=900)
    missing = [image for image in IMAGES if not present(image)]
    assert not missing, f"built, yet no {missing} labelled {LABEL}={tag}"
    forget_older_builds(client, tag)
    return True


def forget_older_builds(client: docker.DockerClient, tag: str) -> None:
    """Untag the test's builds of earlier sources (their layers are mostly shared), so
    images do not pile up; tags that are not a context digest (``latest``) stay."""
    for image in IMAGES:
        for found in client.images.list(name=image):
            for old in found.tags:
                _, _, old_tag = old.rpartition(":")
                if old_tag != tag and re.fullmatch(r"[0-9a-f]{16}", old_tag):
                    try:
                        client.images.remove(old)
                    except docker.errors.APIError:
                        continue  # in use by a container: next time


@contextmanager
def brought_up(stack: Stack, *args: str) -> Iterator[Stack]:
    """``up -d`` for the test, then ``down -v`` whatever happened; logs on failure."""
    try:
        stack.run("--profile", "dashboard", "up", "-d", "--no-build", *args, timeout=300)
        yield stack
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.run("--profile", "dashboard", "down", "-v", "--remove-orphans", "-t", "20")
