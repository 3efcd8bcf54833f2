"""A container can go between the engine listing it and docker-py inspecting it: docker-py's
``containers.list`` asks for the list, then inspects each container in turn, and another
worker's reaper, a finished run or an auto-removed sandbox may remove one in between. Every
listing in sandboxes/ must take that as "not there" rather than fail the cancel, the
reaper pass or the pool's upkeep (a cancel in CI failed this way with "No such container").

The real docker-py client talks HTTP to a stand-in engine on 127.0.0.1 whose list names a
container that is gone by the time it is inspected.
"""

from __future__ import annotations

import ast
import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
import fakeredis
import pytest

from sandboxes import labels
from sandboxes.env_images import EnvEngine
from sandboxes.owner import Owner
from sandboxes.pool import WarmPool
from sandboxes.reaper import Reaper

GONE = "0" * 64
KEPT = "1" * 64


def _kept_labels() -> dict[str, str]:
    """A live owner's unexpired sandbox of run r1 that is also an idle pool container."""
    now = datetime.now(UTC)
    found = labels.sandbox_labels("r1", Owner.current(), now - timedelta(seconds=5), 3600)
    return {**found, labels.POOL: "p1", labels.CREATED_AT: now.isoformat(timespec="seconds")}


class _Engine(http.server.BaseHTTPRequestHandler):
    """Lists GONE and KEPT; inspecting GONE answers 404, as the engine does once it is
    removed."""

    inspected: list[str]

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.endswith("/containers/json"):
            self._send(200, [{"Id": GONE}, {"Id": KEPT}])
        elif path.endswith(f"/containers/{GONE}/json"):
            self.inspected.append(GONE)
            self._send(404, {"message": f"No such container: {GONE}"})
        elif path.endswith("/images/json"):
            env = {labels.ENV_KEY: "k1", labels.ENV_REPO: "acme/api"}
            self._send(200, [{"Id": "sha256:gone", "Labels": env, "RepoTags": ["env:k1"]}])
        elif path.endswith("/images/sha256:gone/json"):
            self.inspected.append("sha256:gone")
            self._send(404, {"message": "No such image: sha256:gone"})
        elif path.endswith(f"/containers/{KEPT}/json"):
            self.inspected.append(KEPT)
            config = {"Labels": _kept_labels(), "Image": "agents-sandbox:latest"}
            self._send(200, {"Id": KEPT, "Name": "/kept", "Config": config, "Image": "sha256:1"})
        else:
            self._send(404, {"message": f"not in this stand-in: {path}"})

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return  # quiet: the test reads ``inspected``


@pytest.fixture
def engine() -> Iterator[tuple[docker.DockerClient, list[str]]]:
    inspected: list[str] = []
    handler = type("Engine", (_Engine,), {"inspected": inspected})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{server.server_port}", version="1.41")
    yield client, inspected
    client.close()
    server.shutdown()
    server.server_close()


def test_the_reaper_passes_over_a_container_removed_while_it_listed(
    engine: tuple[docker.DockerClient, list[str]],
) -> None:
    client, inspected = engine
    reaper = Reaper(client)
    assert reaper.reap() == []
    assert reaper.remove_run("r1", wait=0) == []
    assert inspected.count(GONE) == 2
    assert KEPT in inspected  # the listing went on past it


def test_a_cancel_passes_over_a_pool_container_removed_while_it_listed(
    engine: tuple[docker.DockerClient, list[str]],
) -> None:
    client, inspected = engine
    pool = WarmPool(client, fakeredis.FakeRedis())
    assert Reaper(client, pool=pool).remove_run("r2", wait=0) == []
    # the run's own containers, then the pool's: each listing met the vanished one
    assert inspected.count(GONE) == 2


def test_the_pool_and_the_environments_pass_over_it_too(
    engine: tuple[docker.DockerClient, list[str]],
) -> None:
    client, inspected = engine
    pool = WarmPool(client, fakeredis.FakeRedis())
    assert pool.drain("sha256:other") == 0
    assert [
        (cid, found[labels.RUN_ID]) for cid, found in EnvEngine(client).containers_using("sha256:1")
    ] == [(KEPT, "r1")]
    assert inspected.count(GONE) == 2


def test_listing_environment_images_inspects_none_of_them(
    engine: tuple[docker.DockerClient, list[str]],
) -> None:
    """docker-py's ``images.list`` inspects each listed image too; the engine's summary
    already holds the labels and tags."""
    client, inspected = engine
    found = EnvEngine(client).images()
    assert [(image.id, image.key, image.repo, image.tags) for image in found] == [
        ("sha256:gone", "k1", "acme/api", ("env:k1",))
    ]
    assert inspected == []


def _listing(node: ast.AST, collection: str) -> ast.Call | None:
    """``node`` if it is a call of ``<something>.<collection>.list(...)``."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    owner = node.func.value
    named = node.func.attr == "list" and isinstance(owner, ast.Attribute)
    return node if named and isinstance(owner, ast.Attribute) and owner.attr == collection else None


def test_every_container_listing_in_the_product_passes_over_vanished_ones() -> None:
    """The call sites above are not the last: any new ``containers.list`` must say
    ``ignore_removed=True`` too, and images are listed from the engine's summaries."""
    root = Path(__file__).resolve().parents[2]
    missing = []
    for package in ("sandboxes", "jobs", "cli"):
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                containers = _listing(node, "containers")
                if _listing(node, "images") or (
                    containers and not any(k.arg == "ignore_removed" for k in containers.keywords)
                ):
                    missing.append(f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}")
    assert missing == []
