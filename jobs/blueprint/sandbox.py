"""The run's sandbox, built on demand from what the run record holds.

A sandbox does not outlive its job: when a worker dies, its container is left for the
reaper, and the job that resumes the run builds a new one from the record: the
workspace at the iteration's start commit (from the worker's repository cache), the
repository's setup commands, then the change so far (``artifacts.patch``) applied on
top. So every step after ``prepare`` can run in a fresh sandbox.
"""

from __future__ import annotations

import gzip
import io
import logging
import tarfile
from typing import Literal

from jobs.blueprint.context import RunContext
from jobs.blueprint.deps import Deps
from jobs.checks import excerpt
from jobs.repo_config import RepoConfig, check_entry
from process.exceptions import RepoCacheError, RepoConfigError, StepFailed
from runs.record import Run
from sandboxes.cache import WorkspaceArchive
from sandboxes.config import SandboxConfig
from sandboxes.protocol import ExecResult, Sandbox

log = logging.getLogger(__name__)

Phase = Literal["setup", "agent", "checks"]
RESUME_PATCH = ".git/agents-resume.patch"
MAX_CONFIG_FILE = 1024 * 1024


class RepoFiles:
    """Files of a workspace archive, read without unpacking it: for ``.agents.yml`` and
    check detection before any sandbox exists (the config chooses the sandbox).

    Only regular files at the root up to :data:`MAX_CONFIG_FILE` are read; every root
    entry's kind and size is kept, so a config file that is a link or too big is
    refused with its reason instead of being taken as absent (:meth:`entry`).
    """

    def __init__(self, workspace: WorkspaceArchive) -> None:
        self._files: dict[str, bytes] = {}
        self._dirs: set[str] = set()
        self._entries: dict[str, tuple[str, int]] = {}
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(workspace.archive))) as tar:
            for member in tar:
                name = member.name.removeprefix("./").rstrip("/")
                if not name or name == ".git" or name.startswith(".git/"):
                    continue
                parts = name.split("/")
                self._dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
                if "/" not in name:
                    self._entries[name] = (_kind(member), member.size)
                if member.isdir():
                    self._dirs.add(name)
                elif member.isfile() and "/" not in name and member.size <= MAX_CONFIG_FILE:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        self._files[name] = handle.read()
                elif member.isfile():
                    self._files.setdefault(name, b"")

    def exists(self, path: str) -> bool:
        return path in self._files or path in self._dirs

    def entry(self, name: str) -> tuple[str, int] | None:
        """A root entry's kind (``file``, ``directory``, ``symbolic link``, ...) and size."""
        return self._entries.get(name)

    def read(self, path: str) -> str | None:
        data = self._files.get(path)
        return None if data is None else data.decode("utf-8", errors="replace")

    def read_config(self, name: str) -> str | None:
        """``name`` (``.agents.yml``) as text, None if absent; :class:`RepoConfigError` if it
        is not a regular file, is too big, or is not UTF-8."""
        entry = self.entry(name)
        if entry is None:
            return None
        check_entry(*entry)
        try:
            return self._files.get(name, b"").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RepoConfigError(
                f"{name} is not UTF-8 text (byte {exc.start}), so it was not read"
            ) from None


def _kind(member: tarfile.TarInfo) -> str:
    if member.isfile():
        return "file"
    if member.isdir():
        return "directory"
    if member.issym():
        return "symbolic link"
    if member.islnk():
        return "hard link"
    return "special file"


def workspace(deps: Deps, url: str, commit: str) -> WorkspaceArchive:
    """The workspace archive for ``commit``, refreshing the mirror once if it lacks it."""
    try:
        return deps.cache.workspace(url, commit)
    except RepoCacheError:
        deps.cache.mirror(url, auth_header=deps.git_auth(url))
        return deps.cache.workspace(url, commit)


def _megabytes(size: str) -> int:
    units = {"k": 1 / 1024, "m": 1, "g": 1024}
    if size[-1] in units:
        return max(1, int(int(size[:-1]) * units[size[-1]]))
    return max(1, int(size) // (1024 * 1024))


def sandbox_config(base: SandboxConfig, repo: RepoConfig) -> SandboxConfig:
    """The worker's hardened defaults with the repository's image, network and limits.

    Resource limits from the repository can only be lower than the worker's.
    """
    network = repo.network
    changes: dict[str, object] = {"network": network.setup or network.agent or network.checks}
    if repo.image:
        changes["image"] = repo.image
    limits = repo.limits
    if limits.memory:
        changes["memory_mb"] = min(_megabytes(limits.memory), base.memory_mb)
    if limits.shm:
        changes["shm_size_mb"] = min(_megabytes(limits.shm), base.memory_mb // 4)
    if limits.cpus is not None:
        changes["cpus"] = min(limits.cpus, base.cpus)
    if limits.pids is not None:
        changes["pids"] = min(limits.pids, base.pids)
    if limits.command_timeout is not None:
        changes["command_timeout"] = min(float(limits.command_timeout), base.command_timeout)
    return base.with_changes(**changes)


def set_network(sandbox: Sandbox, config: RepoConfig, phase: Phase) -> None:
    """Online only in the phases the repository asked for (Docker; others cannot)."""
    wanted = getattr(config.network, phase)
    switch = getattr(sandbox, "set_network", None)
    if switch is not None and (
        config.network.setup or config.network.agent or config.network.checks
    ):
        switch(bool(wanted))


def _tail(result: ExecResult) -> str:
    return excerpt(f"{result.stdout}\n{result.stderr}", 800)


def run_setup(sandbox: Sandbox, config: RepoConfig) -> list[tuple[str, float]]:
    """The repository's setup commands, in order; the first failure ends the run."""
    done: list[tuple[str, float]] = []
    if not config.setup:
        return done
    set_network(sandbox, config, "setup")
    for command in config.setup:
        # command_timeout is already within the worker's (prepare.effective_config).
        result = sandbox.exec(command, timeout=config.limits.command_timeout)
        if not result.ok:
            what = "timed out" if result.timed_out else f"exited {result.exit_code}"
            raise StepFailed(f"setup command `{command}` {what}: {_tail(result)}")
        done.append((command, result.duration))
    return done


def apply_patch(sandbox: Sandbox, patch: str) -> None:
    """Put the change so far back into a new sandbox."""
    sandbox.write_file(RESUME_PATCH, patch.encode("utf-8"))
    result = sandbox.exec(
        ["git", "apply", "--binary", "--whitespace=nowarn", RESUME_PATCH], timeout=300
    )
    sandbox.exec(["rm", "-f", RESUME_PATCH], timeout=60)
    if not result.ok:
        raise StepFailed(f"could not restore the change into a new sandbox: {_tail(result)}")


def open_sandbox(
    ctx: RunContext, run: Run, commit: str, patch: str | None
) -> tuple[Sandbox, list[tuple[str, float]]]:
    """A started sandbox at ``commit``, set up, with ``patch`` applied; and the setup run."""
    deps = ctx.deps
    config = ctx.repo_config()
    url = deps.forge.clone_url(run.repo)
    sandbox = deps.sandboxes(
        str(run.id), sandbox_config(deps.config.sandbox, config), workspace(deps, url, commit)
    )
    try:
        sandbox.start()
        setup = run_setup(sandbox, config)
        if patch:
            apply_patch(sandbox, patch)
    except BaseException:
        sandbox.close()
        raise
    return sandbox, setup


class SandboxSession:
    """The current iteration's sandbox, created on first use and closed with the job."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._sandbox: Sandbox | None = None
        self.setup: list[tuple[str, float]] = []

    def get(self, phase: Phase = "agent") -> Sandbox:
        if self._sandbox is None:
            run = self.ctx.run()
            start = run.artifacts.start_commit
            if start is None:
                raise StepFailed("the run has no start commit (prepare did not run)")
            self._sandbox, self.setup = open_sandbox(self.ctx, run, start, run.artifacts.patch)
        set_network(self._sandbox, self.ctx.repo_config(), phase)
        return self._sandbox

    def close(self) -> None:
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            try:
                sandbox.close()
            except Exception:
                log.exception("closing the sandbox of run #%s failed", self.ctx.run_id)
