"""Worker-side git: branch names, commit messages, applying a patch, transport, merging.

Local work goes through GitPython (``Repo.git``). Committing uses plumbing on a private
index file (``read-tree``, ``apply --cached``, ``write-tree``, ``commit-tree``), so a
publish never depends on the state of a working tree a crashed worker left behind.

Commands that talk to a remote run as plain subprocesses with an environment built by
:func:`jobs.forge.auth.git_env`: that is the only way a credential reaches git, and every
message they produce is redacted before it is logged or raised.

A little over the usual size: every git operation the worker makes, with one set of
rules for identities, refs and secrets.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import git

from jobs.forge.auth import GitCredentials, git_env, mask_tokens
from process.exceptions import (
    GitFailed,
    MergeRejected,
    PatchDoesNotApply,
    PushRejected,
    RefLocked,
)

log = logging.getLogger(__name__)

BRANCH_PREFIX = "agents"
RUN_TRAILER = "Agents-Run"
SLUG_MAX = 40
SUBJECT_MAX = 72
#: How much of a failing git command's stderr goes into an error message.
STDERR_MAX = 2000
GIT_TIMEOUT = 600.0
APPLY_FLAGS = ("--binary", "--whitespace=nowarn")


@dataclass(frozen=True)
class Identity:
    """A git author: the bot itself, or a requester credited with ``Co-authored-by``."""

    name: str
    email: str

    def __post_init__(self) -> None:
        for value in (self.name, self.email):
            if not value or any(c in value for c in "<>\n\r"):
                raise ValueError(f"not usable in a git identity: {value!r}")

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    @property
    def co_author_trailer(self) -> str:
        return f"Co-authored-by: {self}"


BOT_IDENTITY = Identity("agents[bot]", "agents-bot@users.noreply.github.com")


# -- names and messages ---------------------------------------------------------------


def slugify(text: str, max_length: int = SLUG_MAX) -> str:
    """Lower-case ASCII words joined by ``-``, cut at a word boundary; ``change`` if empty."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > max_length:
            if not slug:
                slug = word[:max_length]
            break
        slug = candidate
    return slug or "change"


def branch_name(run_id: int, request: str, prefix: str = BRANCH_PREFIX, *, nonce: str = "") -> str:
    """``agents/<id>-<nonce>-<slug>``: stable for a run, so re-running publish finds its
    branch. ``nonce`` names the run store (:attr:`runs.store.RunStore.nonce`): run ids
    count from 1 in every store, so two stores publishing to one repository would
    otherwise both claim ``agents/1-...``."""
    middle = f"{run_id}-{nonce}" if nonce else str(run_id)
    return f"{prefix}/{middle}-{slugify(request)}"


_BRANCH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]*")


def check_branch(branch: str) -> str:
    """``branch`` if it is a plain branch name; refuses what git or a shell could misread."""
    if (
        not _BRANCH.fullmatch(branch)
        or ".." in branch
        or "//" in branch
        or branch.endswith(("/", ".", ".lock"))
        or "/." in branch
    ):
        raise ValueError(f"not a usable branch name: {branch!r}")
    return branch


def run_marker(run_id: int, iteration: int, *, nonce: str = "") -> str:
    """The trailer that makes a published commit recognisable after a crash:
    ``Agents-Run: #<id>@<nonce> iteration <n>`` (the nonce names the run store, as in
    :func:`branch_name`, so another store's run #<id> is never mistaken for this one)."""
    label = f"#{run_id}@{nonce}" if nonce else f"#{run_id}"
    return f"{RUN_TRAILER}: {label} iteration {iteration}"


def subject_line(text: str, max_length: int = SUBJECT_MAX) -> str:
    """The first non-empty line of ``text``, trimmed to ``max_length`` with an ellipsis."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    first = first.rstrip(".")
    if len(first) > max_length:
        first = first[: max_length - 3].rstrip() + "..."
    return first or "Change requested in chat"


def commit_message(
    summary: str,
    *,
    run_id: int,
    iteration: int,
    requester: str | None = None,
    thread_url: str | None = None,
    co_authors: Iterable[Identity] = (),
    nonce: str = "",
) -> str:
    """Subject and body from the agent's summary, then the run's trailers.

    The ``Agents-Run`` trailer is what :func:`find_marked_commit` looks for; each
    ``Co-authored-by`` credits a requester whose chat account maps to a git identity.
    """
    text = summary.strip()
    first, _, rest = text.partition("\n")
    subject = subject_line(text)
    body = rest.strip()
    if subject.endswith("...") and first.strip():
        body = f"{first.strip()}\n\n{body}".strip()
    parts = [subject]
    if body:
        parts.append(body)
    credit = []
    if requester:
        credit.append(f"Requested by {requester}")
    if thread_url:
        credit.append(f"in {thread_url}" if requester else f"Requested in {thread_url}")
    if credit:
        parts.append(" ".join(credit) + ".")
    trailers = [run_marker(run_id, iteration, nonce=nonce)]
    seen: set[str] = set()
    for person in co_authors:
        if person.email.lower() not in seen:
            seen.add(person.email.lower())
            trailers.append(person.co_author_trailer)
    parts.append("\n".join(trailers))
    return "\n\n".join(parts) + "\n"


# -- remote transport (the only place a credential is used) ----------------------------


#: A push that lost a race for the branch's lock: a ``<ref>.lock`` another push holds
#: (or a killed one left), or a ref that moved while the push held it. Not the lasting
#: "cannot lock ref" failures, such as a branch name that clashes with another.
_REF_LOCKED = re.compile(
    r"cannot lock ref '[^']*': (Unable to create '[^']*\.lock': File exists"
    r"|is at [0-9a-f]+ but expected)"
)


def run_git(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    credentials: GitCredentials | None = None,
    timeout: float = GIT_TIMEOUT,
) -> str:
    """Run one git command; the credential lives in this process's environment only."""
    secrets = credentials.secrets if credentials is not None else ()
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=git_env(credentials),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise GitFailed(f"git {args[0]} timed out after {timeout:.0f}s") from None
    if proc.returncode != 0:
        output = mask_tokens(f"{proc.stdout.strip()}\n{proc.stderr.strip()}".strip(), secrets)
        output = output[-STDERR_MAX:]
        message = f"git {args[0]} failed (exit {proc.returncode}): {output}"
        if args[0] == "push" and _REF_LOCKED.search(output):
            raise RefLocked(message)
        if args[0] == "push" and ("rejected" in output or "non-fast-forward" in output):
            raise PushRejected(message)
        raise GitFailed(message)
    return proc.stdout


def ls_remote(url: str, branch: str, credentials: GitCredentials | None = None) -> str | None:
    check_branch(branch)
    out = run_git(["ls-remote", "--", url, f"refs/heads/{branch}"], credentials=credentials)
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return sha
    return None


def fetch(
    workdir: Path,
    url: str,
    refspecs: Sequence[str],
    credentials: GitCredentials | None = None,
) -> None:
    if refspecs:
        run_git(
            ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", url, *refspecs],
            cwd=workdir,
            credentials=credentials,
        )


def push(
    workdir: Path,
    url: str,
    sha: str,
    branch: str,
    credentials: GitCredentials | None = None,
) -> None:
    """Push ``sha`` to ``refs/heads/<branch>``: a plain push, so never a forced one."""
    if not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", sha):
        raise ValueError(f"push a full commit id, not {sha!r}")
    check_branch(branch)
    run_git(
        ["push", "--quiet", "--", url, f"{sha}:refs/heads/{branch}"],
        cwd=workdir,
        credentials=credentials,
    )


# -- local repository work (GitPython) ------------------------------------------------


def init_workdir(workdir: Path, reference: Path | None = None) -> None:
    """An empty repository to publish from (reused, if a crashed run left one).

    ``reference``: a local repository (say, the worker's mirror of this repo) whose
    objects are borrowed through ``objects/info/alternates``, as ``clone --reference``
    does, so publishing fetches only what the mirror lacks instead of the history.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    dot_git = workdir / ".git"
    if not (dot_git / "HEAD").is_file():
        # A worker killed inside ``git init`` leaves a half-made ``.git``; the repository
        # is made beside it and renamed into place, so one that exists is whole.
        shutil.rmtree(dot_git, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{workdir.name}.init-", dir=workdir.parent))
        try:
            git.Repo.init(staging).close()
            (staging / ".git").rename(dot_git)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if reference is not None:
        objects = reference / "objects"
        if not objects.is_dir():
            objects = reference / ".git" / "objects"
        if not objects.is_dir():
            raise GitFailed(f"{reference} is not a git repository to borrow objects from")
        info = dot_git / "objects" / "info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "alternates").write_text(f"{objects.resolve()}\n")


def read_branch(git_dir: Path, branch: str) -> str | None:
    """Where ``branch`` points in the repository at ``git_dir`` (a bare repository or a
    ``.git`` directory), read from the ref files: no process per lookup."""
    check_branch(branch)
    loose = git_dir / "refs" / "heads" / branch
    if loose.is_file():
        return loose.read_text().strip() or None
    packed = git_dir / "packed-refs"
    if packed.is_file():
        wanted = f"refs/heads/{branch}"
        for line in packed.read_text().splitlines():
            sha, _, ref = line.partition(" ")
            if ref == wanted:
                return sha
    return None


def has_commit(workdir: Path, sha: str) -> bool:
    with git.Repo(workdir) as repo:
        try:
            repo.git.cat_file("-e", f"{sha}^{{commit}}")
        except git.GitCommandError:
            return False
        return True


def find_marked_commit(workdir: Path, base: str, head: str, marker: str) -> str | None:
    """The newest commit in ``base..head`` whose message has the trailer line ``marker``."""
    with git.Repo(workdir) as repo:
        out = str(repo.git.log("--format=%H%x00%B%x01", f"{base}..{head}"))
    for record in out.split("\x01"):
        sha, _, message = record.strip().partition("\x00")
        if sha and marker in (line.strip() for line in message.splitlines()):
            return str(sha)
    return None


def commit_patch(
    workdir: Path,
    patch: bytes,
    *,
    parent: str,
    message: str,
    author: Identity,
    patch_base: str | None = None,
    committer: Identity | None = None,
) -> str | None:
    """Commit the result of ``patch`` on top of ``parent``; None if nothing changes.

    ``patch_base`` is the commit the patch was made against (default: ``parent``). When
    it differs from ``parent`` (a rework patch made against the original base, or a
    branch that moved since the sandbox started), the patched tree is three-way merged
    onto ``parent`` with ``patch_base`` as the merge base, so changes already on the
    branch are neither lost nor applied twice.

    Works on a private index file, never on a working tree.
    """
    base = patch_base or parent
    committer = committer or author
    env = {
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_COMMITTER_NAME": committer.name,
        "GIT_COMMITTER_EMAIL": committer.email,
    }
    with tempfile.TemporaryDirectory(prefix="agents-publish-") as tmp, git.Repo(workdir) as repo:
        patch_file = Path(tmp) / "change.patch"
        patch_file.write_bytes(patch)
        message_file = Path(tmp) / "message"
        message_file.write_text(message, encoding="utf-8")
        env["GIT_INDEX_FILE"] = str(Path(tmp) / "index")
        repo.git.read_tree(base, env=env)
        if patch.strip():
            try:
                repo.git.apply("--cached", *APPLY_FLAGS, str(patch_file), env=env)
            except git.GitCommandError as exc:
                detail = str(exc.stderr).strip()[-STDERR_MAX:]
                raise PatchDoesNotApply(
                    f"the patch does not apply to {base[:12]}: {detail}"
                ) from None
        tree = str(repo.git.write_tree(env=env))
        if base != parent:
            patched = str(repo.git.commit_tree(tree, "-p", base, "-m", "patch", env=env))
            try:
                out = str(repo.git.merge_tree("--write-tree", "--name-only", parent, patched))
            except git.GitCommandError as exc:
                files = "\n".join(str(exc.stdout).strip().splitlines()[1:])[-STDERR_MAX:]
                raise PatchDoesNotApply(
                    f"the patch (made against {base[:12]}) conflicts with {parent[:12]}: "
                    f"{files.strip() or 'conflict'}"
                ) from None
            tree = out.splitlines()[0]
        if tree == str(repo.git.rev_parse(f"{parent}^{{tree}}")):
            return None
        sha = str(repo.git.commit_tree(tree, "-p", parent, "-F", str(message_file), env=env))
    return sha.strip()


def merge_into(
    repo_dir: Path,
    *,
    base: str,
    head: str,
    method: str,
    message: str,
    author: Identity,
) -> str:
    """Merge commit ``head`` into branch ``base`` of ``repo_dir`` (bare or not), no worktree.

    ``merge`` makes a two-parent merge commit, ``squash`` one commit with the merged tree.
    Uses ``git merge-tree --write-tree`` (git >= 2.38). The branch is moved with a
    compare-and-swap, so a concurrent update is refused rather than lost.
    """
    if method not in ("merge", "squash"):
        raise MergeRejected(f"merge method {method!r} is not supported here", status=None)
    env = {
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_COMMITTER_NAME": author.name,
        "GIT_COMMITTER_EMAIL": author.email,
    }
    with git.Repo(repo_dir) as repo:
        old = str(repo.git.rev_parse("--verify", f"refs/heads/{base}^{{commit}}"))
        try:
            tree = str(repo.git.merge_tree("--write-tree", old, head)).splitlines()[0]
        except git.GitCommandError as exc:
            raise MergeRejected(
                f"cannot merge {head[:12]} into {base}: conflicts", status=409
            ) from exc
        parents = ["-p", old] + (["-p", head] if method == "merge" else [])
        with tempfile.TemporaryDirectory(prefix="agents-merge-") as tmp:
            message_file = Path(tmp) / "message"
            message_file.write_text(message, encoding="utf-8")
            new = str(repo.git.commit_tree(tree, *parents, "-F", str(message_file), env=env))
        try:
            repo.git.update_ref(f"refs/heads/{base}", new, old)
        except git.GitCommandError as exc:
            raise MergeRejected(f"{base} moved while merging; try again", status=409) from exc
    return new.strip()
