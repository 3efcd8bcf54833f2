"""The sandbox's workspace, through paths that cannot leave it.

The sandbox is a boundary too, but the tools refuse first: a path is checked lexically
(no absolute paths, no ``..``), then resolved inside the sandbox with ``realpath``, so a
symlink that points outside the workspace is caught as well.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from process.exceptions import PathOutsideWorkspace, ToolError, Unresolved
from sandboxes.protocol import Sandbox

#: Files larger than this are not read whole; the model is pointed at search or `run`.
MAX_READ_BYTES = 1_000_000
#: Seconds for the small helper commands (path resolution, mkdir, grep).
HELPER_TIMEOUT = 60.0


@dataclass(frozen=True)
class Resolved:
    """A path inside the workspace, with symlinks resolved."""

    path: str  # relative to the workspace root; "." is the root
    kind: Literal["file", "dir", "missing"]
    size: int = 0


# Prints the workspace root and the target, both fully resolved (-m: the target need not
# exist), then what the target is. Runs in the workspace, the sandbox's default cwd.
_RESOLVE = r"""
root=$(realpath -m -- .) || exit 2
target=$(realpath -m -- "$1") || exit 2
printf '%s\n%s\n' "$root" "$target"
if [ -d "$1" ]; then echo dir
elif [ -e "$1" ]; then echo "file $(wc -c < "$1" 2>/dev/null || echo 0)"
else echo missing
fi
"""


class WorkspaceFiles:
    """File access for the tools, every path resolved and checked first."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def resolve(self, path: str) -> Resolved:
        relative = _lexical(path)
        result = self.sandbox.exec(["sh", "-c", _RESOLVE, "sh", relative], timeout=HELPER_TIMEOUT)
        lines = result.stdout.splitlines()
        if not result.ok or len(lines) < 3:
            raise Unresolved(f"could not resolve {path!r}: {result.stderr.strip() or 'no output'}")
        root, target, kind = lines[0], lines[1], lines[2].split()
        if target == root:
            inside = "."
        elif target.startswith(root.rstrip("/") + "/"):
            inside = target[len(root.rstrip("/")) + 1 :]
        else:
            raise PathOutsideWorkspace(
                f"{path!r} resolves outside the workspace (through a symlink); "
                "only files inside the repository can be used"
            )
        if kind[0] == "dir":
            return Resolved(inside, "dir")
        if kind[0] == "file":
            return Resolved(inside, "file", int(kind[1]) if len(kind) > 1 else 0)
        return Resolved(inside, "missing")

    def read_text(self, path: str) -> tuple[Resolved, str]:
        """A text file's resolved path and content (UTF-8, undecodable bytes replaced)."""
        resolved = self.resolve(path)
        if resolved.kind == "dir":
            raise ToolError(f"{path} is a directory; use list_files to see what it holds")
        if resolved.kind == "missing":
            raise ToolError(f"no such file: {path}")
        if resolved.size > MAX_READ_BYTES:
            raise ToolError(
                f"{path} is {resolved.size:,} bytes, too large to read whole; use search, "
                "or `run` with head/sed to look at part of it"
            )
        data = self.sandbox.read_file(resolved.path)
        if b"\x00" in data[:8192]:
            raise ToolError(f"{path} is a binary file ({len(data):,} bytes); not shown")
        return resolved, data.decode("utf-8", errors="replace")

    def write_text(self, resolved: Resolved, text: str) -> None:
        if ".git" in PurePosixPath(resolved.path).parts:
            raise ToolError("files under .git are managed by the system; change the code instead")
        parent = posixpath.dirname(resolved.path)
        if resolved.kind == "missing" and parent:
            made = self.sandbox.exec(["mkdir", "-p", "--", parent], timeout=HELPER_TIMEOUT)
            if not made.ok:
                raise ToolError(f"could not create directory {parent}: {made.stderr.strip()}")
        self.sandbox.write_file(resolved.path, text.encode("utf-8"))


def _lexical(path: str) -> str:
    """The normalized relative path, or a clear refusal."""
    if not path.strip():
        raise ToolError("the path is empty; give a path relative to the repository root")
    if any(ord(char) < 32 for char in path):
        raise ToolError(f"{path!r} contains control characters")
    pure = PurePosixPath(path)
    if pure.is_absolute():
        raise PathOutsideWorkspace(
            f"{path!r} is absolute; give a path relative to the repository root"
        )
    if ".." in pure.parts:
        raise PathOutsideWorkspace(
            f"{path!r} uses '..'; give a path relative to the repository root without '..'"
        )
    return posixpath.normpath(path)
