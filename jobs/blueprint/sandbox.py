"""The run's sandbox, built on demand from what the run record holds.

A sandbox does not outlive its job: when a worker dies, its container is left for the
reaper, and the job that resumes the run builds a new one from the record: the
workspace at the iteration's start commit (from the worker's repository cache), the
repository's setup commands, then the change so far (``artifacts.patch``) applied on
top. So every step after ``prepare`` can run in a fresh sandbox.

Only setup may have network, when the repository asks (``network: {setup: true}``),
and then only through the egress proxy to the hosts of the operator's allow-list that
the repository's ``network.allow`` keeps. The sandbox goes offline for good when setup
ends; where setup went is recorded on the run and said in the thread.
"""

from __future__ import annotations

import gzip
import io
import logging
import tarfile
from dataclasses import dataclass, field
from typing import Literal

from jobs.blueprint.context import RunContext
from jobs.blueprint.deps import Deps
from jobs.checks import excerpt_lines
from jobs.repo_config import RepoConfig
from process import allowlist
from process.exceptions import RepoCacheError, StepFailed
from runs.events import SetupEgress
from runs.record import EgressReport, Run
from sandboxes.cache import WorkspaceArchive
from sandboxes.config import SandboxConfig
from sandboxes.protocol import ExecResult, Sandbox

log = logging.getLogger(__name__)

Phase = Literal["setup", "agent", "checks"]
RESUME_PATCH = ".git/agents-resume.patch"
MAX_CONFIG_FILE = 1024 * 1024


class RepoFiles:
    """Files of a workspace archive, read without unpacking it: for ``.agents.yml`` and
    check detection before any sandbox exists (the config chooses the sandbox)."""

    def __init__(self, workspace: WorkspaceArchive) -> None:
        self._files: dict[str, bytes] = {}
        self._dirs: set[str] = set()
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(workspace.archive))) as tar:
            for member in tar:
                name = member.name.removeprefix("./").rstrip("/")
                if not name or name == ".git" or name.startswith(".git/"):
                    continue
                parts = name.split("/")
                self._dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
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

    def read(self, path: str) -> str | None:
        data = self._files.get(path)
        return None if data is None else data.decode("utf-8", errors="replace")


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


def egress_allow(base: SandboxConfig, repo: RepoConfig) -> allowlist.Narrowed:
    """The hosts setup may reach: the operator's list, narrowed by the repository's."""
    return allowlist.narrow(base.allow, repo.network.allow)


def check_egress(base: SandboxConfig, repo: RepoConfig) -> None:
    """Refuse a ``network.allow`` that asks for hosts the operator does not allow."""
    if not repo.network.setup:
        return
    refused = egress_allow(base, repo).refused
    if refused:
        names = ", ".join(refused[:5]) + (
            f" and {len(refused) - 5} more" if len(refused) > 5 else ""
        )
        raise StepFailed(
            f".agents.yml: `network.allow` asks for {names}, which the operator does not "
            "allow (AGENTS_EGRESS_ALLOW); a repository can only narrow that list. Remove "
            "them, or ask the operator to allow them"
        )


def sandbox_config(base: SandboxConfig, repo: RepoConfig) -> SandboxConfig:
    """The worker's hardened defaults with the repository's image, network and limits.

    Resource limits from the repository can only be lower than the worker's, and its
    allow-list only narrower.
    """
    network = repo.network.setup
    changes: dict[str, object] = {
        "network": network,
        "allow": egress_allow(base, repo).allowed if network else (),
    }
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
    """Online only in setup, and only when the repository asked (Docker; others cannot).
    Going offline is for good: the agent and the checks never get network back."""
    switch = getattr(sandbox, "set_network", None)
    if switch is not None and config.network.setup:
        switch(phase == "setup")


def egress_report(sandbox: Sandbox) -> EgressReport | None:
    """Where the sandbox's setup reached through the egress proxy (once offline)."""
    report = getattr(sandbox, "egress_report", None)
    return report if isinstance(report, EgressReport) else None


#: Lines of a failed command's output shown, from its start and from its end.
HEAD_LINES = 12
TAIL_LINES = 25
#: Characters of output shown: the thread shows at most 3000 per message, and the
#: cause of a failure is often at the end, so the message must fit whole.
SHOWN_CHARS = 1800


def _output(result: ExecResult) -> str:
    text = f"{result.stdout}\n{result.stderr}".strip()
    if not text:
        return "(no output)"
    return excerpt_lines(text, head=HEAD_LINES, tail=TAIL_LINES, limit=SHOWN_CHARS)


def _denials(report: EgressReport | None) -> str:
    if report is None or not report.denied:
        return ""
    return (
        f" The egress proxy refused {', '.join(report.denied[:5])}: not on this run's "
        "allow-list (AGENTS_EGRESS_ALLOW, narrowed by network.allow), or an address it "
        "never connects to."
    )


@dataclass
class SetupRun:
    """What setup did: each command and its seconds, and where it reached."""

    commands: list[tuple[str, float]] = field(default_factory=list)
    egress: EgressReport | None = None


def run_setup(sandbox: Sandbox, config: RepoConfig) -> SetupRun:
    """The repository's setup commands, in order; the first failure ends the run.

    Each command's output is one stream (stderr joined to stdout), so a failure shows
    its first and last lines in order. The sandbox is offline when this returns.
    """
    done = SetupRun()
    if not config.setup:
        set_network(sandbox, config, "agent")
        return done
    set_network(sandbox, config, "setup")
    try:
        for command in config.setup:
            result = sandbox.exec(f"exec 2>&1\n{command}", timeout=config.limits.command_timeout)
            if not result.ok:
                set_network(sandbox, config, "agent")
                what = "timed out" if result.timed_out else f"exited {result.exit_code}"
                if result.oom_killed:
                    what += " (out of memory)"
                raise StepFailed(
                    f"setup command `{command}` {what}.{_denials(egress_report(sandbox))} "
                    f"Its output, first and last lines:\n```\n{_output(result)}\n```"
                )
            done.commands.append((command, result.duration))
    finally:
        set_network(sandbox, config, "agent")
    done.egress = egress_report(sandbox) if config.network.setup else None
    return done


def apply_patch(sandbox: Sandbox, patch: str) -> None:
    """Put the change so far back into a new sandbox."""
    sandbox.write_file(RESUME_PATCH, patch.encode("utf-8"))
    result = sandbox.exec(
        ["git", "apply", "--binary", "--whitespace=nowarn", RESUME_PATCH], timeout=300
    )
    sandbox.exec(["rm", "-f", RESUME_PATCH], timeout=60)
    if not result.ok:
        raise StepFailed(f"could not restore the change into a new sandbox: {_output(result)}")


def open_sandbox(
    ctx: RunContext, run: Run, commit: str, patch: str | None
) -> tuple[Sandbox, SetupRun]:
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
        self.setup = SetupRun()

    def get(self, phase: Phase = "agent") -> Sandbox:
        if self._sandbox is None:
            run = self.ctx.run()
            start = run.artifacts.start_commit
            if start is None:
                raise StepFailed("the run has no start commit (prepare did not run)")
            self._sandbox, self.setup = open_sandbox(self.ctx, run, start, run.artifacts.patch)
            if self.setup.egress is not None:
                record_egress(self.ctx, self.setup.egress)
        if phase != "setup":  # setup ran (online) in open_sandbox; never online again
            set_network(self._sandbox, self.ctx.repo_config(), phase)
        return self._sandbox

    def close(self) -> None:
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            try:
                sandbox.close()
            except Exception:
                log.exception("closing the sandbox of run #%s failed", self.ctx.run_id)


def record_egress(ctx: RunContext, report: EgressReport) -> None:
    """Keep where setup went on the run; say it in the thread when it is news."""
    before = ctx.run().artifacts.egress
    merged = report if before is None else before.merged(report)

    def recorded(run: Run) -> None:
        run.artifacts.egress = merged

    ctx.save(recorded)
    news = before is None or (merged.reached, merged.denied, merged.failed) != (
        before.reached,
        before.denied,
        before.failed,
    )
    if news:
        ctx.record(
            SetupEgress(
                by=ctx.by,
                text=merged.summary(),
                reached=merged.reached,
                denied=merged.denied,
                failed=merged.failed,
            )
        )
