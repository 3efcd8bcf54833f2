"""The embedded forge: bare repositories plus pull-request records on disk.

Layout under ``root`` for repository ``owner/name``::

    owner/name.git/               the bare repository (pushes, fetches, merges)
    owner/name.forge/lock         serialises writes to the records below
    owner/name.forge/pulls/7.json one pull request
    owner/name.forge/checks/<sha>.json   check results recorded for a commit
    owner/name.forge/permissions.json    {"login": "admin" | "write" | "read" | "none"}

Records are written atomically (temporary file, then rename) under an exclusive file
lock, so several workers on one machine may share a root. Bare repositories refuse
non-fast-forward pushes, like a protected GitHub branch would.

A little over the usual size: it implements the whole forge protocol for a directory of
bare repositories, one method per operation, as the GitHub forge does for GitHub.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import git

from jobs.forge import git as gitops
from jobs.forge.git import BOT_IDENTITY, Identity
from jobs.forge.protocol import (
    CheckRun,
    CheckSummary,
    LineComment,
    MergeMethod,
    Permission,
    PullRequest,
    normalise_permission,
)
from process.exceptions import ForgeRejected, MergeRejected, RefLocked

log = logging.getLogger(__name__)

#: A ref lock this old belongs to a push that was killed, not to one in progress.
STALE_REF_LOCK_SECONDS = 10.0
#: Pushes to a locked branch: tried this often, this many seconds apart (long enough
#: for a lock to become stale).
PUSH_ATTEMPTS = 15
PUSH_RETRY_SECONDS = 1.0

_REPO_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*/[A-Za-z0-9_][A-Za-z0-9_.-]*")


def check_repo_name(repo: str) -> tuple[str, str]:
    """``owner/name`` split in two; anything that could escape the root is refused."""
    if not _REPO_NAME.fullmatch(repo) or ".." in repo or repo.endswith(".git"):
        raise ForgeRejected(f"not a repository name of the form owner/name: {repo!r}", status=404)
    owner, name = repo.split("/")
    return owner, name


class LocalForge:
    """A forge in a directory: what ``AGENTS_FORGE=local`` and the demo use."""

    kind = "local"

    def __init__(
        self,
        root: Path,
        *,
        default_permission: Permission = "write",
        merge_author: Identity = BOT_IDENTITY,
    ) -> None:
        self.root = Path(root)
        self.default_permission: Permission = default_permission
        self.merge_author = merge_author

    # -- repositories -----------------------------------------------------------------

    def repo_path(self, repo: str) -> Path:
        owner, name = check_repo_name(repo)
        return self.root / owner / f"{name}.git"

    def _meta(self, repo: str) -> Path:
        owner, name = check_repo_name(repo)
        return self.root / owner / f"{name}.forge"

    def _existing(self, repo: str) -> Path:
        path = self.repo_path(repo)
        if not (path / "HEAD").is_file():
            raise ForgeRejected(
                f"{repo}: no such repository on the local forge; check the owner/name in the "
                "request, or ask an admin to create it",
                status=404,
            )
        return path

    def create_repo(
        self,
        repo: str,
        *,
        source: Path | None = None,
        default_branch: str = "main",
        author: Identity = BOT_IDENTITY,
    ) -> Path:
        """A new bare repository, seeded with one commit of ``source``'s files if given.

        An existing repository is left as it is, so the demo can call this every time.
        """
        path = self.repo_path(repo)
        if (path / "HEAD").is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        with (
            git.Repo.init(path, bare=True, initial_branch=default_branch) as bare,
            bare.config_writer() as config,
        ):
            config.set_value("receive", "denyNonFastForwards", "true")
            config.set_value("receive", "denyDeletes", "true")
            config.set_value("uploadpack", "allowAnySHA1InWant", "true")
        if source is not None:
            self._seed(path, Path(source), default_branch, author)
        self._meta(repo).mkdir(parents=True, exist_ok=True)
        return path

    @staticmethod
    def _seed(bare: Path, source: Path, branch: str, author: Identity) -> None:
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": author.name,
            "GIT_COMMITTER_EMAIL": author.email,
        }
        with tempfile.TemporaryDirectory(prefix="agents-seed-") as tmp:
            work = Path(tmp) / "work"
            shutil.copytree(source, work, ignore=shutil.ignore_patterns(".git"), symlinks=True)
            with git.Repo.init(work, initial_branch=branch) as repo:
                repo.git.add("--all")
                repo.git.commit("--quiet", "--allow-empty", "-m", "Initial commit", env=env)
                repo.git.push("--quiet", str(bare), f"HEAD:refs/heads/{branch}")

    def default_branch(self, repo: str) -> str:
        with git.Repo(self._existing(repo)) as bare:
            return str(bare.git.symbolic_ref("--short", "HEAD"))

    def clone_url(self, repo: str) -> str:
        return self._existing(repo).as_uri()

    # -- git transport (no credential: the repository is a local path) -----------------

    def remote_head(self, repo: str, branch: str) -> str | None:
        return gitops.read_branch(self._existing(repo), branch)

    def fetch(self, repo: str, workdir: Path, refspecs: Sequence[str]) -> None:
        gitops.fetch(workdir, self.clone_url(repo), refspecs)

    def push(self, repo: str, workdir: Path, sha: str, branch: str) -> None:
        """Push; if the branch is locked, clear a lock a killed push left and try again.

        A live push holds a ref lock for milliseconds; one older than
        :data:`STALE_REF_LOCK_SECONDS` belongs to a git that was killed (as a worker's
        push is, with its worker), and would refuse every later push to the branch.
        """
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            try:
                gitops.push(workdir, self.clone_url(repo), sha, branch)
                return
            except RefLocked:
                if attempt == PUSH_ATTEMPTS:
                    raise
                self._remove_stale_ref_locks(repo)
                time.sleep(PUSH_RETRY_SECONDS)

    def _remove_stale_ref_locks(self, repo: str) -> None:
        bare = self._existing(repo)
        for lock in [*(bare / "refs").rglob("*.lock"), bare / "packed-refs.lock"]:
            try:
                stale = time.time() - lock.stat().st_mtime > STALE_REF_LOCK_SECONDS
            except FileNotFoundError:
                continue
            if stale:
                log.warning("%s: removing %s, left by a push that was killed", repo, lock.name)
                lock.unlink(missing_ok=True)

    # -- pull requests ----------------------------------------------------------------

    def find_pr(self, repo: str, branch: str) -> PullRequest | None:
        for pr in self.list_prs(repo):
            if pr.branch == branch and pr.state == "open":
                return pr
        return None

    def list_prs(self, repo: str) -> list[PullRequest]:
        pulls = self._meta(repo) / "pulls"
        if not pulls.is_dir():
            return []
        numbers = sorted(
            int(p.stem) for p in pulls.glob("*.json") if p.stem.isascii() and p.stem.isdigit()
        )
        return [self.get_pr(repo, n) for n in numbers]

    def pull_for_commit(self, repo: str, sha: str) -> PullRequest | None:
        """The merged pull request that made commit ``sha`` on the base branch, if any
        (``agents eval`` takes a task's text from it)."""
        for pr in self.list_prs(repo):
            if pr.merged and pr.merge_sha == sha:
                return pr
        return None

    def get_pr(self, repo: str, number: int) -> PullRequest:
        record = self._read_pr(repo, number)
        if record["state"] == "open":
            head = self.remote_head(repo, record["branch"])
            if head is not None:
                record["head_sha"] = head
        return PullRequest.model_validate(record)

    def create_pr(
        self, repo: str, *, branch: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequest:
        with self._lock(repo):
            existing = self.find_pr(repo, branch)
            if existing is not None:
                return existing
            head = self.remote_head(repo, branch)
            if head is None:
                raise ForgeRejected(f"{repo}: branch {branch!r} does not exist", status=422)
            if self.remote_head(repo, base) is None:
                raise ForgeRejected(f"{repo}: base branch {base!r} does not exist", status=422)
            number = max((pr.number for pr in self.list_prs(repo)), default=0) + 1
            record = {
                "repo": repo,
                "number": number,
                "url": self._pr_path(repo, number).as_uri(),
                "branch": branch,
                "base": base,
                "title": title,
                "body": body,
                "draft": draft,
                "state": "open",
                "merged": False,
                "head_sha": head,
                "merge_sha": None,
            }
            self._write_pr(repo, record)
        return PullRequest.model_validate(record)

    def update_pr_body(self, repo: str, number: int, body: str) -> PullRequest:
        return self._update(repo, number, body=body)

    def mark_ready(self, repo: str, number: int) -> PullRequest:
        return self._update(repo, number, draft=False)

    def post_review(self, repo: str, number: int, body: str) -> None:
        with self._lock(repo):
            self._read_pr(repo, number)  # a 404 for a pull request that is not there
            reviews = self.reviews(repo, number)
            reviews.append(body)
            _write_json(self._reviews_path(repo, number), reviews)

    def reviews(self, repo: str, number: int) -> list[str]:
        """The bodies of the reviews posted on a pull request, oldest first."""
        path = self._reviews_path(repo, number)
        if not path.is_file():
            return []
        bodies: list[str] = json.loads(path.read_text())
        return bodies

    def merge(
        self, repo: str, number: int, *, method: MergeMethod = "squash", sha: str | None = None
    ) -> PullRequest:
        with self._lock(repo):
            pr = self.get_pr(repo, number)
            if pr.merged:
                return pr
            if pr.state != "open":
                raise MergeRejected(f"{repo}#{number} is closed", status=405)
            if pr.draft:
                raise MergeRejected(f"{repo}#{number} is still a draft", status=405)
            if sha is not None and sha != pr.head_sha:
                raise MergeRejected(
                    f"{repo}#{number}: head moved to {pr.head_sha[:12]}, expected {sha[:12]}",
                    status=409,
                )
            if method == "merge":
                message = f"Merge pull request #{number} from {pr.branch}\n\n{pr.title}\n"
            else:
                message = f"{pr.title} (#{number})\n\n{pr.body}".rstrip() + "\n"
            merged = gitops.merge_into(
                self._existing(repo),
                base=pr.base,
                head=pr.head_sha,
                method=method,
                message=message,
                author=self.merge_author,
            )
            record = pr.model_dump()
            record.update(state="closed", merged=True, merge_sha=merged)
            self._write_pr(repo, record)
        return PullRequest.model_validate(record)

    # -- checks and permissions -------------------------------------------------------

    def checks(self, repo: str, sha: str) -> CheckSummary:
        path = self._meta(repo) / "checks" / f"{sha}.json"
        if not path.is_file():
            return CheckSummary.of(sha, [])
        runs = [CheckRun.model_validate(r) for r in json.loads(path.read_text())]
        return CheckSummary.of(sha, runs)

    def comment(self, repo: str, number: int, body: str) -> None:
        """Kept next to the PR's record (``comments/<number>.json``), oldest first."""
        self.get_pr(repo, number)  # a missing PR is an error, as on GitHub
        with self._lock(repo):
            path = self._meta(repo) / "comments" / f"{number}.json"
            comments = json.loads(path.read_text()) if path.is_file() else []
            comments.append({"body": body, "author": self.merge_author.name})
            _write_json(path, comments)

    def comments(self, repo: str, number: int) -> list[dict[str, str]]:
        path = self._meta(repo) / "comments" / f"{number}.json"
        return json.loads(path.read_text()) if path.is_file() else []

    def review_line_comments(self, repo: str, number: int, review_id: int) -> list[LineComment]:
        """None: nobody reviews on the local forge (its reviews are the bot's own)."""
        self.get_pr(repo, number)  # a missing PR is an error, as on GitHub
        del review_id
        return []

    def ci_configured(self, repo: str) -> bool:
        """A local repository has no CI until something reports checks for it
        (:meth:`set_checks`) or says it will (:meth:`enable_ci`)."""
        return (self._meta(repo) / "ci").is_file()

    def enable_ci(self, repo: str) -> None:
        """Say that checks will be reported for ``repo`` (a local CI hook, tests), so a
        run watches its pushed head for them."""
        marker = self._meta(repo) / "ci"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()

    def set_checks(self, repo: str, sha: str, runs: Sequence[CheckRun]) -> None:
        """Record check results for a commit (tests, the demo, or a local CI hook)."""
        self.enable_ci(repo)
        with self._lock(repo):
            _write_json(
                self._meta(repo) / "checks" / f"{sha}.json",
                [run.model_dump() for run in runs],
            )

    def permission(self, repo: str, login: str) -> Permission:
        path = self._meta(repo) / "permissions.json"
        table: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
        if login in table:
            return normalise_permission(table[login])
        return self.default_permission

    def set_permission(self, repo: str, login: str, permission: Permission) -> None:
        with self._lock(repo):
            path = self._meta(repo) / "permissions.json"
            table = json.loads(path.read_text()) if path.is_file() else {}
            table[login] = permission
            _write_json(path, table)

    def close(self) -> None:
        """Nothing to release; here for the protocol."""

    # -- records ----------------------------------------------------------------------

    def _pr_path(self, repo: str, number: int) -> Path:
        return self._meta(repo) / "pulls" / f"{number}.json"

    def _reviews_path(self, repo: str, number: int) -> Path:
        return self._meta(repo) / "pulls" / f"{number}.reviews.json"

    def _read_pr(self, repo: str, number: int) -> dict[str, Any]:
        path = self._pr_path(repo, number)
        if not path.is_file():
            raise ForgeRejected(f"{repo}#{number}: no such pull request", status=404)
        record: dict[str, Any] = json.loads(path.read_text())
        return record

    def _write_pr(self, repo: str, record: dict[str, Any]) -> None:
        _write_json(self._pr_path(repo, int(record["number"])), record)

    def _update(self, repo: str, number: int, **changes: Any) -> PullRequest:
        with self._lock(repo):
            record = self.get_pr(repo, number).model_dump()
            if any(record[k] != v for k, v in changes.items()):
                record.update(changes)
                self._write_pr(repo, record)
        return PullRequest.model_validate(record)

    @contextmanager
    def _lock(self, repo: str) -> Iterator[None]:
        self._existing(repo)
        meta = self._meta(repo)
        meta.mkdir(parents=True, exist_ok=True)
        with open(meta / "lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _write_json(path: Path, data: Any) -> None:
    """Write ``data`` so readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


if TYPE_CHECKING:
    from jobs.forge.protocol import Forge

    def _conforms(forge: LocalForge) -> Forge:
        return forge
