"""Verified deployment: the compose stack built from the offline base, one request through it.

Slack is the emulator and GitHub the fake, both served by this test on an address of
this host that the containers reach; the worker plays the recorded transcript instead
of a model. The bot, two workers, Redis and rq-dashboard are the real images, started
by compose. The worker's sandboxes are siblings on the same engine, started through
the socket. At the end ``down -v`` must leave no container, network or volume behind.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fakes.github.server import FakeGitHub
from fakes.slack.server import SlackEmulator
from jobs.forge.local import LocalForge
from sandboxes import labels
from tests.ops.compose import (
    OFFLINE_BASE,
    ROOT,
    Stack,
    brought_up,
    compose_command,
    context_digest,
    ensure_images,
    host_address,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = "acme/retrying"  # the name the transcript was recorded with
SAMPLE = ROOT / "examples" / "sample-repo"
REQUEST = "make the retry limit configurable"
CHANNEL = "C_GENERAL"
REQUESTER = "U_ALICE"
TOKEN = "ghs_composeT0KEN0123456789abcdefghij"
STEP_TIMEOUT = 240.0


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    try:
        engine = docker.from_env()
        engine.ping()
        engine.images.get(OFFLINE_BASE)
        engine.images.get("agents-sandbox:latest")
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine with {OFFLINE_BASE} and the sandbox image: {exc}")
    yield engine
    engine.close()


def wait_healthy(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as answer:  # noqa: S310 - our own stack
                if answer.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


class Creations(threading.Thread):
    """Watches the engine's event stream from now on for sandbox containers created, and
    remembers the host names of their owners (the engine keeps only a few past events,
    so asking afterwards is not reliable on a busy engine)."""

    def __init__(self, client: docker.DockerClient) -> None:
        super().__init__(daemon=True)
        self.owners: set[str] = set()
        self._stream = client.events(
            decode=True,
            filters={"type": "container", "event": "create", "label": labels.OWNER},
        )
        self.start()

    def run(self) -> None:
        try:
            for event in self._stream:
                self.owners.add(event["Actor"]["Attributes"][labels.OWNER].split(":", 1)[0])
        except Exception:  # noqa: S110 - the stream closed under us by stop()
            pass

    def stop(self) -> None:
        self._stream.close()
        self.join(timeout=10)


INSTALLED = (
    "import importlib.metadata as m, json, platform;"
    "print(json.dumps([platform.python_version(),"
    " {d.metadata['Name'].lower().replace('_', '-'): d.version for d in m.distributions()}]))"
)


def image_python(client: docker.DockerClient, image: str) -> tuple[str, dict[str, str]]:
    """The image's Python version and what its /opt/agents virtualenv holds."""
    out = client.containers.run(
        image, ["/opt/agents/bin/python", "-c", INSTALLED], entrypoint=[], remove=True
    )
    version, packages = json.loads(out)
    return version, packages


def installed(client: docker.DockerClient, image: str) -> tuple[str, dict[str, str]]:
    """The image's Python version, and what its virtualenv holds besides pip and us."""
    out = client.containers.run(
        image, ["/opt/agents/bin/python", "-c", INSTALLED], entrypoint=[], remove=True
    )
    version, packages = json.loads(out)
    for own in ("pip", "agents"):  # the venv's own pip; the project itself
        packages.pop(own, None)
    return version, packages


def locked(groups: tuple[str, ...], python: str) -> dict[str, str]:
    """uv.lock's pins for the runtime plus ``groups``, markers judged for ``python``."""
    exported = subprocess.run(
        [
            sys.executable,
            "-m",
            "uv",
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            "--quiet",
            *(f"--group={g}" for g in groups),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    environment = default_environment() | {
        "python_full_version": python,
        "python_version": ".".join(python.split(".")[:2]),
    }
    pins = {}
    for line in exported.splitlines():
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            (spec,) = requirement.specifier
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def thread_text(emu: SlackEmulator, ts: str) -> str:
    return json.dumps(emu.thread(CHANNEL, ts))


def test_one_request_through_the_compose_stack_then_nothing_is_left(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    started = time.monotonic()
    address = host_address(client)
    bare = LocalForge(tmp_path / "origin").create_repo(REPO, source=SAMPLE)
    with (
        SlackEmulator(host=address) as emu,
        FakeGitHub(token=TOKEN, host=address) as fake,
    ):
        fake.add_repo(REPO, bare=bare)
        tag = context_digest(client, OFFLINE_BASE)
        stack = Stack(
            compose_command(),
            {
                "AGENTS_BASE": OFFLINE_BASE,
                "AGENTS_IMAGE_TAG": tag,
                "AGENTS_BOT_PUBLISH": "127.0.0.1:",
                "AGENTS_DASHBOARD_PUBLISH": "127.0.0.1:",
                "SLACK_BOT_TOKEN": emu.bot_token,
                "SLACK_SIGNING_SECRET": emu.signing_secret,
                "SLACK_API_URL": emu.api_url,
                "AGENTS_CHANNEL_REPOS": f"{CHANNEL}={REPO}",
                "ANTHROPIC_API_KEY": "sk-ant-unused-by-the-replay-model",
                "GITHUB_TOKEN": TOKEN,
                "AGENTS_GITHUB_API_URL": fake.base_url,
            },
        )
        built = ensure_images(stack, client, tag)
        # Each image holds exactly uv.lock's versions of what it installs.
        for image, groups in (("agents-app", ("build",)), ("agents-dashboard", ("dashboard",))):
            python, packages = installed(client, f"{image}:{tag}")
            assert packages == locked(groups, python), image
        stack.run("config", "-q")
        with brought_up(stack, "--scale", "worker=2"):
            port = stack.published_port("bot", 3000)
            wait_healthy(f"http://127.0.0.1:{port}/healthz")

            # The deployment is what the compose file promises.
            for key, value in (("appendonly", "yes"), ("maxmemory-policy", "noeviction")):
                answer = stack.run("exec", "-T", "redis", "redis-cli", "config", "get", key)
                assert answer.stdout.split() == [key, value]
            workers = stack.containers(client, "worker")
            assert len(workers) == 2
            hostnames = {client.api.inspect_container(w)["Config"]["Hostname"] for w in workers}
            for service in ("bot", "worker", "redis", "rq-dashboard"):
                for container_id in stack.containers(client, service):
                    attrs = client.api.inspect_container(container_id)
                    binds = attrs["HostConfig"]["Binds"] or []
                    has_socket = any("docker.sock" in b for b in binds)
                    assert has_socket == (service == "worker"), service
                    env = "\n".join(attrs["Config"]["Env"] or [])
                    if service == "bot":
                        assert TOKEN not in env
                        assert "ANTHROPIC_API_KEY" not in env
                    if service == "worker":
                        assert emu.bot_token not in env
                        assert emu.signing_secret not in env

            # One scripted request, as Slack would deliver it.
            creations = Creations(client)
            emu.bot_url = f"http://127.0.0.1:{port}/slack/events"
            ts, delivery = emu.mention(REQUESTER, CHANNEL, REQUEST)
            assert delivery.ok, delivery
            decision = emu.wait_for_message(CHANNEL, "ready for review", timeout=STEP_TIMEOUT)
            pulls = fake.pulls(REPO)
            assert len(pulls) == 1
            assert pulls[0]["head"]["ref"].startswith("agents/")
            assert pulls[0]["html_url"] in thread_text(emu, ts)

            # The run's commands ran in sandboxes the containerised workers started, as
            # siblings, through the socket.
            creations.stop()
            assert creations.owners & hostnames, creations.owners

            emu.click(REQUESTER, CHANNEL, decision["ts"], "agents_approve")
            emu.wait_for_message(CHANNEL, "approved by", timeout=STEP_TIMEOUT)
            assert fake.pulls(REPO)[0]["merged"] is True

            # What docs/operations.md tells operators to run.
            info = stack.run("exec", "-T", "worker", "rq", "info", "--url", "redis://redis:6379/0")
            assert re.search(r"\b2 workers\b", info.stdout), info.stdout
            assert re.search(r"^agents\b", info.stdout, flags=re.MULTILINE), info.stdout

            dashboard = stack.published_port("rq-dashboard", 9181)
            wait_healthy(f"http://127.0.0.1:{dashboard}/")
            # The worker processes the dashboard lists are the stack's two workers.
            with urllib.request.urlopen(
                f"http://127.0.0.1:{dashboard}/0/data/workers.json", timeout=10
            ) as answer:
                listed = json.load(answer)["workers"]
            assert len(listed) == 2
        leftovers = stack.leftovers(client)
        assert leftovers == {"containers": [], "networks": [], "volumes": []}
        # The sandboxes the workers started were siblings on this engine; none outlives them.
        sandboxes = [
            c.name
            for c in client.containers.list(
                all=True, filters={"label": labels.OWNER}, ignore_removed=True
            )
            if c.labels[labels.OWNER].split(":", 1)[0] in hostnames
        ]
        assert sandboxes == []
    print(
        f"compose stack: {'built images, ' if built else 'images cached, '}"
        f"{time.monotonic() - started:.1f}s"
    )
