from __future__ import annotations

import fcntl
import io
import multiprocessing
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from process.exceptions import RepoCacheError
from sandboxes.cache import BASE_REF, RepoCache, repo_key, strip_userinfo

from .conftest import GIT_ENV, commit_all, git, make_repo


def members(archive: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name.removeprefix("./"): m for m in tar.getmembers()}


def unpack(archive: bytes, where: Path) -> Path:
    where.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(where, filter="tar")
    return where


def test_workspace_is_the_commit_as_a_one_commit_repository(
    tmp_path: Path, sample_repo: tuple[Path, str]
) -> None:
    repo, commit = sample_repo
    (repo / "README.md").write_text("changed later\n")
    commit_all(repo, "later")
    cache = RepoCache(tmp_path / "cache")
    cache.mirror(str(repo))

    workspace = cache.workspace(str(repo), commit)

    assert workspace.base_commit == commit
    tree = unpack(workspace.archive, tmp_path / "tree")
    assert (tree / "README.md").read_text() == "# sample\n"
    assert (tree / "bin" / "run.sh").stat().st_mode & 0o111
    assert (tree / "link_to_app.py").is_symlink()
    assert git(tree, "rev-parse", "HEAD") == commit
    assert git(tree, "rev-parse", BASE_REF) == commit
    assert git(tree, "status", "--porcelain") == ""
    assert git(tree, "rev-list", "--count", "HEAD") == "1"  # shallow: no history
    assert git(tree, "remote") == ""  # nothing points back at the worker
    names = members(workspace.archive)
    assert ".git/FETCH_HEAD" not in names
    assert {m.uname for m in names.values()} <= {"", "root"}


def test_export_ignore_attributes_do_not_drop_files(tmp_path: Path) -> None:
    repo = tmp_path / "origin"
    commit = make_repo(repo, {".gitattributes": "secret.txt export-ignore\n", "secret.txt": "x"})
    cache = RepoCache(tmp_path / "cache")
    cache.mirror(str(repo))
    tree = unpack(cache.workspace(str(repo), commit).archive, tmp_path / "tree")
    assert (tree / "secret.txt").read_text() == "x"
    assert git(tree, "status", "--porcelain") == ""


def test_refresh_fetches_into_the_existing_mirror(tmp_path: Path) -> None:
    repo = tmp_path / "origin"
    make_repo(repo)
    cache = RepoCache(tmp_path / "cache")
    mirror = cache.mirror(str(repo))
    marker = mirror / "agents-test-marker"
    marker.write_text("still the same mirror")

    (repo / "new.txt").write_text("new\n")
    new_commit = commit_all(repo, "new")
    assert cache.mirror(str(repo)) == mirror

    assert marker.exists()  # fetched, not cloned again
    assert cache.resolve(str(repo), "main") == new_commit


def test_a_refresh_clears_locks_a_killed_fetch_left(tmp_path: Path) -> None:
    """git killed mid-fetch leaves ``*.lock`` files; with them every later fetch fails
    with "cannot lock ref" until someone cleans up by hand."""
    repo = tmp_path / "origin"
    make_repo(repo)
    cache = RepoCache(tmp_path / "cache")
    mirror = cache.mirror(str(repo))
    subprocess.run(["git", "pack-refs", "--all"], cwd=mirror, check=True)
    (mirror / "refs" / "heads").mkdir(parents=True, exist_ok=True)
    left = [mirror / "refs" / "heads" / "main.lock", mirror / "packed-refs.lock"]
    for lock in left:
        lock.write_text("")

    (repo / "new.txt").write_text("new\n")
    new_commit = commit_all(repo, "new")
    assert cache.mirror(str(repo)) == mirror

    assert cache.resolve(str(repo), "main") == new_commit
    assert [lock for lock in left if lock.exists()] == []


def test_a_worker_killed_mid_fetch_leaves_the_lock_with_its_git(tmp_path: Path) -> None:
    """The lock is handed to git: killed while its fetch runs on, the worker's lock
    must not pass to the next fetch (which would delete the live git's ref locks)."""
    repo = tmp_path / "origin"
    make_repo(repo)
    root = tmp_path / "cache"
    RepoCache(root).mirror(str(repo))
    started, hold = tmp_path / "fetch-started", tmp_path / "hold"
    hold.touch()
    shim = tmp_path / "bin" / "git"
    shim.parent.mkdir()
    shim.write_text(
        "#!/bin/sh\n"
        f'case " $* " in *" fetch "*) touch {started}\n'
        f"  while [ -e {hold} ]; do sleep 0.05; done;; esac\n"
        f'exec {shutil.which("git")} "$@"\n'
    )
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from sandboxes.cache import RepoCache; "
            "RepoCache(Path(sys.argv[1])).mirror(sys.argv[2])",
            str(root),
            str(repo),
        ],
        env=env,
    )
    lockfile = root / "locks" / f"{repo_key(str(repo))}.lock"
    try:
        wait_until(started.exists)
        worker.kill()
        worker.wait(timeout=30)
        with lockfile.open("a") as handle:
            with pytest.raises(BlockingIOError):  # git still has it
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            hold.unlink()  # git finishes its fetch, and the lock goes with it
            wait_until(lambda: try_lock(handle))
    finally:
        hold.unlink(missing_ok=True)
        if worker.poll() is None:
            worker.kill()
    assert cache_mirror_is_usable(root, repo)


def try_lock(handle: Any) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(handle, fcntl.LOCK_UN)
    return True


def wait_until(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {condition}"
        time.sleep(0.05)


def cache_mirror_is_usable(root: Path, repo: Path) -> bool:
    cache = RepoCache(root)
    cache.mirror(str(repo))
    return len(cache.resolve(str(repo), "main")) == 40


def test_workspace_needs_no_network_once_mirrored(tmp_path: Path) -> None:
    repo = tmp_path / "origin"
    commit = make_repo(repo)
    cache = RepoCache(tmp_path / "cache")
    cache.mirror(str(repo))
    repo.rename(tmp_path / "origin-gone")

    workspace = cache.workspace(str(repo), commit)

    assert workspace.base_commit == commit
    with pytest.raises(RepoCacheError, match="not a commit in the mirror"):
        cache.workspace(str(repo), "0" * 40)


def test_workspace_without_a_mirror_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RepoCacheError, match="no mirror"):
        RepoCache(tmp_path / "cache").workspace("https://example.invalid/x.git", "HEAD")


def test_archives_are_reused_and_pruned(tmp_path: Path) -> None:
    repo = tmp_path / "origin"
    make_repo(repo)
    cache = RepoCache(tmp_path / "cache")
    commits = []
    for n in range(6):
        (repo / "n.txt").write_text(str(n))
        commits.append(commit_all(repo, f"c{n}"))
    cache.mirror(str(repo))
    first = cache.workspace(str(repo), commits[0])
    assert cache.workspace(str(repo), commits[0]).archive == first.archive
    for commit in commits[1:]:
        cache.workspace(str(repo), commit)
    kept = list((tmp_path / "cache" / "workspaces" / repo_key(str(repo))).glob("*.tar.gz"))
    assert len(kept) == 4


def test_a_build_prunes_what_killed_workers_left(tmp_path: Path) -> None:
    repo = tmp_path / "origin"
    commit = make_repo(repo)
    cache = RepoCache(tmp_path / "cache")
    cache.mirror(str(repo))
    archives = tmp_path / "cache" / "workspaces" / repo_key(str(repo))
    archives.mkdir()
    old_clone = tmp_path / "cache" / "tmp" / "clone-old"
    (old_clone / "mirror.git").mkdir(parents=True)
    old_partial = archives / f"{'0' * 40}.1.1.partial"
    old_partial.write_bytes(b"half")
    live_clone = tmp_path / "cache" / "tmp" / "clone-live"
    live_clone.mkdir()
    two_hours_ago = time.time() - 7200
    for path in (old_clone, old_partial):
        os.utime(path, (two_hours_ago, two_hours_ago))

    cache.workspace(str(repo), commit)

    assert not old_clone.exists()
    assert not old_partial.exists()
    assert live_clone.is_dir()  # it may be a clone in progress


def test_credentials_stay_out_of_keys_and_messages(tmp_path: Path) -> None:
    url = "https://user:s3cret@example.invalid/acme/api.git"
    assert strip_userinfo(url) == "https://example.invalid/acme/api.git"
    assert repo_key(url) == repo_key("https://example.invalid/acme/api.git")
    assert repo_key(url).startswith("api-")
    with pytest.raises(RepoCacheError) as err:
        RepoCache(tmp_path / "cache").mirror(url)
    assert "s3cret" not in str(err.value)


def _hammer(root: str, url: str, rounds: int) -> list[str]:
    cache = RepoCache(Path(root))
    built = []
    for _ in range(rounds):
        cache.mirror(url)
        built.append(cache.workspace(url, cache.resolve(url, "main")).base_commit)
    return built


def test_concurrent_runs_do_not_corrupt_the_mirror(tmp_path: Path) -> None:
    repo = tmp_path / "origin"
    make_repo(repo)
    root = tmp_path / "cache"
    stop = threading.Event()

    def keep_committing() -> None:
        n = 0
        while not stop.is_set():
            (repo / "counter.txt").write_text(str(n))
            commit_all(repo, f"tick {n}")
            n += 1

    writer = threading.Thread(target=keep_committing)
    writer.start()
    try:
        with multiprocessing.get_context("spawn").Pool(4) as pool:
            results = pool.starmap(_hammer, [(str(root), str(repo), 4)] * 4)
    finally:
        stop.set()
        writer.join()

    assert all(len(r) == 4 for r in results)
    mirrors = list((root / "mirrors").iterdir())
    assert len(mirrors) == 1  # one clone; everyone else fetched into it
    fsck = subprocess.run(
        ["git", "-C", str(mirrors[0]), "fsck", "--no-progress"],
        env=GIT_ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    assert fsck.returncode == 0, fsck.stderr


def test_a_held_lock_blocks_a_refresh(tmp_path: Path) -> None:
    repo = tmp_path / "origin"
    make_repo(repo)
    cache = RepoCache(tmp_path / "cache")
    cache.mirror(str(repo))
    done = threading.Event()

    with cache._lock(str(repo), exclusive=False):
        refresher = threading.Thread(target=lambda: (cache.mirror(str(repo)), done.set()))
        refresher.start()
        assert not done.wait(1.0)
    refresher.join(timeout=30)
    assert done.is_set()
