"""The patch a sandbox exports, applied to the base commit on the host, is the sandbox's tree."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from sandboxes.cache import WorkspaceArchive
from sandboxes.protocol import Sandbox

from .conftest import GIT_ENV, SandboxMaker, git

Tree = dict[str, tuple[str, bool, bytes]]


def sandbox_tree(sandbox: Sandbox) -> Tree:
    """path -> (kind, executable, content or link target), as the sandbox sees it."""
    listing = sandbox.exec(
        [
            "find",
            ".",
            "-path",
            "./.git",
            "-prune",
            "-o",
            "(",
            "-type",
            "f",
            "-o",
            "-type",
            "l",
            ")",
            "-printf",
            "%y %m %p\\0%l\\0",
        ]
    )
    assert listing.ok, listing.stderr
    fields = listing.stdout.split("\0")
    tree: Tree = {}
    for header, target in zip(fields[0:-1:2], fields[1::2], strict=True):
        kind, mode, path = header.split(" ", 2)
        path = path.removeprefix("./")
        if kind == "l":
            tree[path] = ("link", False, target.encode())
        else:
            tree[path] = ("file", bool(int(mode, 8) & 0o111), sandbox.read_file(path))
    return tree


def host_tree(root: Path) -> Tree:
    tree: Tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        here = Path(dirpath)
        names = filenames + [d for d in dirnames if (here / d).is_symlink()]
        for name in names:
            path = here / name
            info = path.lstat()
            relative = path.relative_to(root).as_posix()
            if stat.S_ISLNK(info.st_mode):
                tree[relative] = ("link", False, os.readlink(path).encode())
            else:
                tree[relative] = ("file", bool(info.st_mode & 0o111), path.read_bytes())
    return tree


def make_every_kind_of_change(sandbox: Sandbox) -> None:
    sandbox.write_file("src/app.py", b"def add(a, b):\n    return b + a\n")
    sandbox.write_file("added dir/nouveau fichier.txt", b"bonjour\n")
    sandbox.write_file("data/blob.bin", bytes(reversed(range(256))) * 8)
    sandbox.write_file("images/pixel.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\xff")
    sandbox.write_file("empty.txt", b"")
    sandbox.write_file("dir with space/file name.txt", b"spaces, edited\n")
    done = sandbox.exec(
        "set -e; rm to_delete.txt; mv src/old_name.py src/new_name.py;"
        " mv 'ünïcödé/naïve.txt' 'ünïcödé/café ☕.txt';"
        " chmod +x docs/guide.txt; chmod -x bin/run.sh; ln -s src/app.py latest.py;"
        " git commit -qam 'the agent may commit; the patch is still against the base'"
        " --author='a <a@b>' || true"
    )
    assert done.ok, done.stderr


def test_exported_patch_reproduces_the_sandbox_tree(
    make_sandbox: SandboxMaker,
    sample_workspace: WorkspaceArchive,
    sample_repo: tuple[Path, str],
    tmp_path: Path,
) -> None:
    origin, base = sample_repo
    sandbox = make_sandbox(sample_workspace)
    make_every_kind_of_change(sandbox)

    patch = sandbox.export_patch()

    for feature in (
        b"rename from src/old_name.py",
        b"GIT binary patch",
        b"deleted file mode",
        b"new file mode 120000",
        b"old mode 100755",
        b"new mode 100755",
    ):
        assert feature in patch
    checkout = tmp_path / "checkout"
    subprocess.run(
        ["git", "clone", "-q", "--no-checkout", str(origin), str(checkout)], env=GIT_ENV, check=True
    )
    git(checkout, "checkout", "-q", "--detach", base)
    (tmp_path / "change.patch").write_bytes(patch)
    git(checkout, "apply", "--binary", "--index", str(tmp_path / "change.patch"))

    assert host_tree(checkout) == sandbox_tree(sandbox)


def test_no_change_is_an_empty_patch(
    make_sandbox: SandboxMaker, sample_workspace: WorkspaceArchive
) -> None:
    sandbox = make_sandbox(sample_workspace)
    sandbox.exec("git status >/dev/null; touch README.md")  # stat changes are not changes
    assert sandbox.export_patch() == b""
