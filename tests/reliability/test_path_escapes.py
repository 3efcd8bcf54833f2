"""Path escapes in the agent's tool arguments, on both sandbox backends.

``../../etc/passwd``, absolute paths, a symlink to a file outside the workspace, a
symlinked directory (as the path and as a parent of it), a relative symlink that climbs
out, and a chain of symlinks that leaves only at its last hop: every tool that takes a
path (read, write, edit, list, search) refuses them, and so does the sandbox itself
(``read_file``, ``write_file``, ``list_files``) for callers that skip the tools. Nothing
outside the workspace is read or changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from jobs.agent.tools import Toolbox
from jobs.agent.workspace import WorkspaceFiles
from sandboxes.cache import RepoCache
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.local_sandbox import LocalSandbox
from sandboxes.protocol import Sandbox
from tests.reliability.figures import Cell, Table
from tests.sandboxes.conftest import make_repo

SECRET = "outside-the-workspace-secret"


@pytest.fixture(params=["local", pytest.param("docker", marks=pytest.mark.docker)])
def sandbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sandbox]:
    make_repo(tmp_path / "origin", {"README.md": "# inside\n", "src/app.py": "x = 1\n"})
    cache = RepoCache(tmp_path / "cache")
    cache.mirror(str(tmp_path / "origin"))
    workspace = cache.workspace(str(tmp_path / "origin"), "HEAD")
    box: Sandbox
    if request.param == "docker":
        client = request.getfixturevalue("docker_client")
        assert isinstance(client, docker.DockerClient)
        box = DockerSandbox("path-escapes", workspace=workspace, client=client)
    else:
        box = LocalSandbox("path-escapes", workspace=workspace)
    with box:
        yield box


def plant(sandbox: Sandbox) -> str:
    """A directory outside the workspace holding a secret, and the symlinks to it."""
    made = sandbox.exec(
        [
            "sh",
            "-c",
            'out=$(mktemp -d) && printf %s "$1" > "$out/secret.txt" && '
            'ln -s "$out/secret.txt" link_file && ln -s "$out" link_dir && '
            'ln -s "$(realpath --relative-to=. "$out")" rel_dir && '
            "mkdir nested && ln -s ../link_dir nested/hop && echo $out",
            "sh",
            SECRET,
        ]
    )
    assert made.ok, made.stderr
    return made.stdout.strip()


DOTS = "uses '..'; give a path relative to the repository root without '..'"
ABSOLUTE = "is absolute; give a path relative to the repository root"
OUTSIDE = (
    "resolves outside the workspace (through a symlink); only files inside the repository "
    "can be used"
)
#: The path the tools are given, what it is, and what every tool says of it (after the
#: path), on either backend.
ESCAPES = {
    "../../etc/passwd": ("climbs out with `..`", DOTS),
    "src/../../outside.txt": ("climbs out with `..` after a directory", DOTS),
    "/etc/passwd": ("absolute", ABSOLUTE),
    "link_file": ("symlink to a file outside", OUTSIDE),
    "link_dir": ("symlink to a directory outside", OUTSIDE),
    "link_dir/secret.txt": ("a file under a symlinked parent directory", OUTSIDE),
    "rel_dir/secret.txt": ("under a relative symlink that climbs out", OUTSIDE),
    "nested/hop/secret.txt": (
        "under a symlink to a symlink (leaves at the second hop)",
        OUTSIDE,
    ),
    "link_dir/planted.txt": ("a new file under a symlinked parent directory", OUTSIDE),
}


class Refusals(Table):
    """One row per path, naming the backends whose tools refused every path."""

    def __init__(self) -> None:
        super().__init__(
            "security-path-escapes",
            "Security: path escapes in tool arguments",
            ["path", "what it is", "read, write, edit, list, search", "what the agent is told"],
            notes=(
                "`link_file`, `link_dir` (absolute symlinks), `rel_dir` (a relative one that "
                "climbs out) and `nested/hop` (a symlink to `link_dir`, so it leaves at the "
                "second hop) point at a directory made with `mktemp -d` outside the "
                "workspace. The tools check paths lexically, then with `realpath` inside the "
                "sandbox. The backends' own `read_file`, `write_file` and `list_files` "
                "refuse the same paths with `ValueError` (the Docker backend resolves every "
                "path component through the Docker archive API). The secret outside was "
                "never read or changed."
            ),
            order=63,
        )
        self.backends: list[str] = []

    def reset(self) -> None:
        super().reset()
        self.backends.clear()

    def collected(self) -> list[list[Cell]]:
        if not self.backends:
            return []
        plural = "es" if len(self.backends) > 1 else ""
        refused = f"refused on the {' and '.join(self.backends)} sandbox{plural}"
        return [
            [f"`{path}`", what, refused, f"{path!r} {told}"]
            for path, (what, told) in ESCAPES.items()
        ]


TABLE = Refusals()
record_table = TABLE.fixture()


def calls(path: str) -> dict[str, dict[str, Any]]:
    return {
        "read_file": {"path": path},
        "write_file": {"path": path, "content": "planted"},
        "edit_file": {"path": path, "old_text": SECRET, "new_text": "edited"},
        "list_files": {"path": path},
        "search": {"pattern": "secret", "path": path},
    }


def test_the_tools_refuse_every_escape(sandbox: Sandbox) -> None:
    backend = "Docker" if isinstance(sandbox, DockerSandbox) else "local"
    outside = plant(sandbox)
    tools = Toolbox(
        WorkspaceFiles(sandbox), output_chars=20_000, command_timeout=30, max_command_timeout=60
    )
    for path, (_, told) in ESCAPES.items():
        for name, args in calls(path).items():
            out = tools.call(name, args)
            assert out.is_error, (backend, path, name, out.content)
            # The same answer from every tool, on both backends.
            first = out.content.splitlines()[0]
            assert first == f"{name} failed: {path!r} {told}", (backend, first)
            assert SECRET not in out.content
    # Nothing outside changed, nothing was planted, and the workspace still works.
    check = sandbox.exec(["sh", "-c", 'cat "$1/secret.txt"; ls "$1"', "sh", outside])
    assert check.stdout == f"{SECRET}secret.txt\n"
    assert not tools.call("read_file", {"path": "src/app.py"}).is_error
    TABLE.backends.append(backend)


def test_the_sandbox_refuses_too(sandbox: Sandbox) -> None:
    """Below the tools: the backends' own file methods, for callers that skip them."""
    outside = plant(sandbox)
    for path in ("../../etc/passwd", "/etc/passwd", "link_file", "link_dir/secret.txt"):
        with pytest.raises(ValueError, match="workspace"):
            sandbox.read_file(path)
    # A link through a directory that does not exist: the kernel would refuse the "..",
    # but a path cleaned lexically would land in /etc.
    sandbox.exec(["ln", "-s", "missing/../../../etc", "through_missing"])
    for path in (
        "link_file",
        "link_dir/planted.txt",
        "nested/hop/planted.txt",
        "through_missing/planted.txt",
    ):
        with pytest.raises(ValueError, match="workspace"):
            sandbox.write_file(path, b"planted")
    for path in ("link_dir", "nested/hop", "rel_dir"):
        with pytest.raises(ValueError, match="workspace"):
            sandbox.list_files(path)
    check = sandbox.exec(["sh", "-c", 'cat "$1/secret.txt"; ls "$1"', "sh", outside])
    assert check.stdout == f"{SECRET}secret.txt\n"
    # Symlinks that stay inside still work.
    sandbox.exec(["ln", "-s", "src/app.py", "alias.py"])
    assert sandbox.read_file("alias.py") == b"x = 1\n"
