"""Worker-side repository mirrors, and workspaces built from them without network.

Each repository is kept as a bare mirror (``git clone --mirror``) under the cache
root and refreshed with ``git fetch``; only :meth:`RepoCache.mirror` touches the
network. A run's workspace is a fresh shallow repository holding exactly one commit,
fetched from the mirror over the local filesystem and packed as a gzipped tar, so the
sandbox gets a real git repository to diff against without any remote or history.

Locks are ``fcntl`` file locks per repository: writers (clone, fetch) take them
exclusively, workspace builds share them, so concurrent runs and concurrent worker
processes never see a half-written mirror.

Longer than most modules: the mirror, its locks and the workspace archives built from it
are one mechanism; the lock rules only make sense beside the operations they guard.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from process.exceptions import RepoCacheError

log = logging.getLogger(__name__)

BASE_REF = "refs/agents/base"
#: WorkspaceArchive archives kept per repository, newest first; older ones are deleted.
KEEP_ARCHIVES = 4
# Settings for every git call that builds a workspace: nothing from the worker's
# own git configuration (credential helpers, URL rewrites with tokens) takes part.
_ISOLATED_GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "agents",
    "GIT_AUTHOR_EMAIL": "agents@localhost",
    "GIT_COMMITTER_NAME": "agents",
    "GIT_COMMITTER_EMAIL": "agents@localhost",
}


#: Options that keep ``git gc --auto`` (and ``git maintenance``) inside the command
#: that starts it instead of in a background process that outlives it.
_NO_DETACHED_GC = ("-c", "gc.autoDetach=false", "-c", "maintenance.autoDetach=false")

# Variables that would point git at some other repository than the one we name.
_REPOSITORY_VARIABLES = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
    }
)


def _environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REPOSITORY_VARIABLES}
    env.update(extra)
    return env


@dataclass(frozen=True)
class WorkspaceArchive:
    """A repository at one commit, as a gzipped tar of the tree and its ``.git``."""

    archive: bytes
    base_commit: str


@dataclass(frozen=True)
class TreeEntry:
    """One file of a commit: its path, git mode (``100644``, ``120000`` ...) and blob id."""

    path: str
    mode: str
    oid: str


def strip_userinfo(url: str) -> str:
    """The URL without user or password, for keys, logs and error messages."""
    parts = urlsplit(url)
    if not parts.netloc or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def repo_key(url: str) -> str:
    """A stable, readable directory name for a repository URL."""
    clean = strip_userinfo(url).rstrip("/")
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", clean.rsplit("/", 1)[-1]).strip("-.")
    tail = tail.removesuffix(".git")[:40] or "repo"
    return f"{tail}-{hashlib.sha256(clean.encode()).hexdigest()[:12]}"


class RepoCache:
    """Mirrors in ``root/mirrors``, locks in ``root/locks``, tars in ``root/workspaces``."""

    def __init__(self, root: Path, *, fetch_timeout: float = 900.0) -> None:
        self.root = root
        self.fetch_timeout = fetch_timeout
        for sub in ("mirrors", "locks", "workspaces", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def mirror_path(self, url: str) -> Path:
        return self.root / "mirrors" / f"{repo_key(url)}.git"

    def mirror(self, url: str, *, auth_header: str | None = None) -> Path:
        """Clone the mirror, or refresh it with a fetch if it exists. The only network step.

        ``auth_header`` (e.g. ``Authorization: Bearer ...``) reaches git through its
        environment for this one call; it is never written to the mirror's config.
        """
        path = self.mirror_path(url)
        env = _environ(GIT_TERMINAL_PROMPT="0")
        if auth_header:
            env.update(
                GIT_CONFIG_COUNT="1",
                GIT_CONFIG_KEY_0="http.extraHeader",
                GIT_CONFIG_VALUE_0=auth_header,
            )
        with self._lock(url, exclusive=True) as lock:
            if (path / "HEAD").is_file():
                _remove_stale_locks(path)
                # gc --auto in the foreground: detached, it would go on writing the
                # mirror (and holding ref locks) after this lock is released.
                self._git(
                    [*_NO_DETACHED_GC, "fetch", "--prune", "--quiet", "origin"],
                    cwd=path,
                    env=env,
                    url=url,
                    lock=lock,
                )
                return path
            tmp = Path(tempfile.mkdtemp(dir=self.root / "tmp", prefix="clone-"))
            try:
                self._git(
                    # --no-local: a packed mirror even from a path, so building
                    # workspaces reuses packed objects instead of compressing loose ones.
                    [
                        "clone",
                        "--mirror",
                        "--no-local",
                        "--quiet",
                        "--",
                        url,
                        str(tmp / "mirror.git"),
                    ],
                    cwd=self.root,
                    env=env,
                    url=url,
                    lock=lock,
                )
                (tmp / "mirror.git").rename(path)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return path

    def resolve(self, url: str, commit: str) -> str:
        """The full commit id of ``commit`` (an id or a ref) in the mirror; no network."""
        path = self.mirror_path(url)
        if not (path / "HEAD").is_file():
            raise RepoCacheError(f"no mirror of {strip_userinfo(url)} yet; call mirror() first")
        with self._lock(url, exclusive=False):
            try:
                out = self._git(
                    ["rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"],
                    cwd=path,
                    env=_environ(**_ISOLATED_GIT_ENV),
                    url=url,
                )
            except RepoCacheError:
                raise RepoCacheError(
                    f"{commit} is not a commit in the mirror of {strip_userinfo(url)}; "
                    "refresh it with mirror() if it is new"
                ) from None
        return out.decode().strip()

    def git_output(self, url: str, args: list[str]) -> bytes:
        """What a read-only git command prints in the mirror (``log``, ``diff``,
        ``blame``: evaluation tasks and survival figures read history); no network."""
        path = self.mirror_path(url)
        if not (path / "HEAD").is_file():
            raise RepoCacheError(f"no mirror of {strip_userinfo(url)} yet; call mirror() first")
        with self._lock(url, exclusive=False):
            return self._git(args, cwd=path, env=_environ(**_ISOLATED_GIT_ENV), url=url)

    def workspace(self, url: str, commit: str) -> WorkspaceArchive:
        """The workspace archive for ``commit`` (an id or a ref). Never uses the network.

        Archives are kept per commit, so a second run on the same commit (a rework, a
        retry) skips the checkout.
        """
        sha = self.resolve(url, commit)
        archives = self.root / "workspaces" / repo_key(url)
        archives.mkdir(exist_ok=True)
        cached = archives / f"{sha}.tar.gz"
        if cached.is_file():
            os.utime(cached)
            return WorkspaceArchive(cached.read_bytes(), sha)
        with tempfile.TemporaryDirectory(dir=self.root / "tmp", prefix="ws-") as tmp:
            data = self._build_archive(url, sha, Path(tmp) / "repo")
        partial = archives / f"{sha}.{os.getpid()}.{threading.get_ident()}.partial"
        partial.write_bytes(data)
        partial.replace(cached)
        self._prune(archives)
        return WorkspaceArchive(data, sha)

    # -- reading a commit without a checkout (environments) ---------------------------

    def tree(self, url: str, commit: str) -> list[TreeEntry]:
        """Every file of ``commit`` with its mode and blob id; no checkout, no network.

        Blob ids are content hashes, so they stand for the files' contents in an
        environment's key."""
        sha = self.resolve(url, commit)
        with self._lock(url, exclusive=False):
            out = self._git(
                ["ls-tree", "-r", "-z", "--full-tree", sha],
                cwd=self.mirror_path(url),
                env=_environ(**_ISOLATED_GIT_ENV),
                url=url,
            )
        entries = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, name = record.partition(b"\t")
            mode, kind, oid = meta.decode().split(" ")
            if kind == "blob":
                entries.append(TreeEntry(name.decode("utf-8", "surrogateescape"), mode, oid))
        return entries

    def read_blob(self, url: str, oid: str, limit: int) -> bytes | None:
        """A blob's bytes, or None when it is larger than ``limit`` (never read then)."""
        env = _environ(**_ISOLATED_GIT_ENV)
        path = self.mirror_path(url)
        with self._lock(url, exclusive=False):
            size = int(self._git(["cat-file", "-s", oid], cwd=path, env=env, url=url))
            if size > limit:
                return None
            return self._git(["cat-file", "blob", oid], cwd=path, env=env, url=url)

    def pack_for(self, url: str, commit: str, have: str | None, limit: int) -> bytes:
        """A git pack of ``commit`` and its tree, without history and without the
        objects ``have``'s tree already holds: what a checkout at ``have`` needs to
        check ``commit`` out (:mod:`sandboxes.checkout`). Empty when they are equal."""
        sha = self.resolve(url, commit)
        if have == sha:
            return b""
        env = _environ(**_ISOLATED_GIT_ENV)
        path = self.mirror_path(url)

        def objects(rev: str) -> list[str]:
            out = self._git(["rev-list", "--objects", "--no-walk", rev], cwd=path, env=env, url=url)
            return [line.split(" ", 1)[0] for line in out.decode().splitlines() if line]

        with self._lock(url, exclusive=False):
            wanted = objects(sha)
            if have is not None:
                try:
                    known = set(objects(have))
                except RepoCacheError:  # no longer in the mirror: send everything
                    known = set()
                wanted = [oid for oid in wanted if oid not in known]
            pack = self._git_input(
                ["pack-objects", "--stdout", "-q"],
                "".join(f"{oid}\n" for oid in wanted).encode(),
                cwd=path,
                env=env,
                url=url,
            )
        if len(pack) > limit:
            raise RepoCacheError(
                f"the objects {sha[:12]} adds to the environment's checkout are over "
                f"{limit // (1024 * 1024)} MiB"
            )
        return pack

    def tree_archive(self, url: str, commit: str, directory: str = ".") -> bytes:
        """The files of ``commit`` (under ``directory``) as a tar, without ``.git``: a
        Docker build's context."""
        sha = self.resolve(url, commit)
        treeish = sha if directory in ("", ".") else f"{sha}:{directory}"
        with self._lock(url, exclusive=False):
            return self._git(
                ["-c", "tar.umask=022", "archive", "--format=tar", treeish],
                cwd=self.mirror_path(url),
                env=_environ(**_ISOLATED_GIT_ENV),
                url=url,
            )

    def _git_input(
        self, args: list[str], data: bytes, *, cwd: Path, env: Mapping[str, str], url: str
    ) -> bytes:
        try:
            proc = subprocess.run(
                ["git", *args],
                cwd=cwd,
                env=dict(env),
                input=data,
                capture_output=True,
                timeout=self.fetch_timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RepoCacheError(f"git {args[0]} for {strip_userinfo(url)} timed out") from None
        if proc.returncode != 0:
            why = proc.stderr.decode(errors="replace").strip() or f"exit {proc.returncode}"
            raise RepoCacheError(f"git {args[0]} for {strip_userinfo(url)} failed: {why}")
        return proc.stdout

    def _build_archive(self, url: str, sha: str, repo: Path) -> bytes:
        """A shallow one-commit repository plus its tree, as a gzipped tar.

        The tree comes from ``git archive`` and the index from ``git read-tree``, so no
        working tree is written on the worker: the sandbox unpacks it instead.
        """
        env = _environ(**_ISOLATED_GIT_ENV)
        # No reflogs: they would record the worker's user and host in the sandbox.
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="core.logAllRefUpdates",
            GIT_CONFIG_VALUE_0="false",
        )

        def git(*args: str) -> bytes:
            return self._git(list(args), cwd=repo, env=env, url=url)

        # An empty template: no sample hooks or description in the sandbox's .git.
        self._git(["init", "--quiet", "--template=", str(repo)], cwd=self.root, env=env, url=url)
        with self._lock(url, exclusive=False) as lock:
            self._git(
                ["fetch", "--quiet", "--no-tags", "--depth=1", str(self.mirror_path(url)), sha],
                cwd=repo,
                env=env,
                url=url,
                lock=lock,
            )
        git("update-ref", "--no-deref", "HEAD", sha)
        git("update-ref", BASE_REF, sha)
        git("read-tree", sha)
        # The repository's export-ignore/export-subst attributes are for release
        # tarballs; here the tree must be exactly the commit's.
        info = repo / ".git" / "info"
        info.mkdir()
        (info / "attributes").write_text("* -export-ignore -export-subst\n")
        # An empty tree (a repository with no files yet) archives as a lone pax header
        # that tarfile cannot open: it contributes nothing.
        empty = not git("ls-tree", "--name-only", sha).strip()
        tree = b"" if empty else git("-c", "tar.umask=022", "archive", "--format=tar", sha)
        shutil.rmtree(info)
        # FETCH_HEAD names the mirror's path on the worker; the sandbox has no use for it.
        (repo / ".git" / "FETCH_HEAD").unlink(missing_ok=True)
        return gzip.compress(_join_tars(tree, _tar_of(repo / ".git", ".git")), compresslevel=1)

    def _prune(self, archives: Path) -> None:
        tars = sorted(archives.glob("*.tar.gz"), key=_mtime, reverse=True)
        for old in tars[KEEP_ARCHIVES:]:
            old.unlink(missing_ok=True)
        # Left by a worker that died mid-write or mid-clone; a live one finishes (or
        # times out) long before this age.
        stale_after = max(3600.0, 2 * self.fetch_timeout)
        for partial in archives.glob("*.partial"):
            if time.time() - _mtime(partial) > stale_after:
                partial.unlink(missing_ok=True)
        for leftover in (self.root / "tmp").iterdir():
            if time.time() - _mtime(leftover) > stale_after:
                shutil.rmtree(leftover, ignore_errors=True)

    @contextmanager
    def _lock(self, url: str, *, exclusive: bool) -> Iterator[int]:
        """Hold the repository's lock; yields its file descriptor for :meth:`_git`."""
        path = self.root / "locks" / f"{repo_key(url)}.lock"
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield handle.fileno()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _git(
        self,
        args: list[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        url: str,
        lock: int | None = None,
    ) -> bytes:
        """Run git. ``lock``: the descriptor :meth:`_lock` yielded, handed to git so the
        lock outlives this process if it is killed while git (and the gc it may start)
        still writes the mirror: the next holder then waits for them instead."""
        verb = next((a for a in args if not a.startswith("-") and "=" not in a), "")
        try:
            proc = subprocess.run(
                ["git", *args],
                cwd=cwd,
                env=dict(env),
                capture_output=True,
                timeout=self.fetch_timeout,
                check=False,
                pass_fds=() if lock is None else (lock,),
            )
        except subprocess.TimeoutExpired:
            raise RepoCacheError(
                f"git {verb} for {strip_userinfo(url)} took longer than {self.fetch_timeout:.0f}s"
            ) from None
        if proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace").strip().replace(url, strip_userinfo(url))
            why = stderr or f"exit {proc.returncode}"
            raise RepoCacheError(f"git {verb} for {strip_userinfo(url)} failed: {why}")
        return proc.stdout


def _remove_stale_locks(mirror: Path) -> None:
    """Delete the ``*.lock`` files a git killed mid-fetch left in ``mirror``.

    Only a fetch writes to a mirror: under this cache's exclusive lock, which its git
    holds too (so a worker killed mid-fetch keeps it until git is done), and with its
    automatic gc kept in the foreground. So when that lock is ours no live git owns a
    ``*.lock``; left alone they would fail every later fetch ("cannot lock ref") until
    someone deleted them by hand.
    """
    for name in ("HEAD.lock", "config.lock", "packed-refs.lock", "shallow.lock", "index.lock"):
        (mirror / name).unlink(missing_ok=True)
    for stale in (mirror / "refs").rglob("*.lock"):
        log.warning("removing %s, left by a git that was killed", stale)
        stale.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # pruned by a concurrent build
        return 0.0


def _anonymous(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """Entries owned by nobody in particular: the worker's user names stay out."""
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member


def _tar_of(path: Path, arcname: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(path, arcname=arcname, filter=_anonymous)
    return out.getvalue()


def _join_tars(first: bytes, second: bytes) -> bytes:
    """One tar holding both: ``first`` up to its end-of-archive marker, then ``second``.

    Joining bytes instead of copying members keeps a 5,000-file tree cheap to pack.
    """
    if not first:
        return second
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        tar.getmembers()
        end = tar.offset
    return first[:end] + second
