"""The sandbox against a ``DOCKER_HOST`` reached over TCP, as a remote engine would be.

A small proxy forwards 127.0.0.1:<port> to the local socket, so the engine is only
reachable the way a remote one is: nothing may rely on sharing its filesystem.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import socketserver
import threading
from collections.abc import Iterator

import docker
import pytest

from sandboxes.cache import WorkspaceArchive
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.engine import DEFAULT_HOST

pytestmark = pytest.mark.docker


class _Forward(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        client: socket.socket = self.request
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as engine:
            engine.connect(DEFAULT_HOST.removeprefix("unix://"))
            peers = {client: engine, engine: client}
            open_reads = set(peers)
            with selectors.DefaultSelector() as selector:
                for sock in peers:
                    selector.register(sock, selectors.EVENT_READ)
                while open_reads:
                    for key, _ in selector.select(timeout=1):
                        sock = key.fileobj
                        assert isinstance(sock, socket.socket)
                        try:
                            data = sock.recv(65536)
                        except OSError:
                            data = b""
                        if data:
                            peers[sock].sendall(data)
                            continue
                        selector.unregister(sock)
                        open_reads.discard(sock)
                        with contextlib.suppress(OSError):
                            peers[sock].shutdown(socket.SHUT_WR)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def tcp_docker_host(docker_client: docker.DockerClient) -> Iterator[str]:
    with _Server(("127.0.0.1", 0), _Forward) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"tcp://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            thread.join()


def test_the_sandbox_works_through_a_tcp_docker_host(
    tcp_docker_host: str, sample_workspace: WorkspaceArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", tcp_docker_host)
    with DockerSandbox("remote-1", workspace=sample_workspace) as sandbox:
        assert sandbox.exec("cat README.md").stdout == "# sample\n"
        sandbox.write_file("remote.txt", b"written over tcp\n")
        assert sandbox.read_file("remote.txt") == b"written over tcp\n"
        assert sandbox.exec("sleep 100", timeout=1).timed_out
        assert b"+written over tcp" in sandbox.export_patch()
