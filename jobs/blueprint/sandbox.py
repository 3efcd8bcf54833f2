"""The run's sandbox, built on demand from what the run record holds.

A sandbox does not outlive its job: when a worker dies, its container is left for the
reaper, and the job that resumes the run builds a new one from the record: the
repository's environment (:mod:`jobs.blueprint.environment`) moved to the iteration's
start commit, or without one the workspace from the worker's repository cache and
the setup commands; then the change so far (``artifacts.patch``) applied on top. So
every step after ``prepare`` can run in a fresh sandbox.

When the change touches a dependency input (the agent added a dependency), setup runs
again in the run's sandbox before the checks; the cached environment stays as it was.

Only setup may have network, when the repository asks (``network: {setup: true}``),
and then only through the egress proxy to the hosts of the operator's allow-list that
the repository's ``network.allow`` keeps: wherever setup commands run (an
environment's build, ``environment.update``, setup again before the checks, or a
sandbox without an environment). The sandbox goes offline when they end; where they
went is recorded on the run and said in the thread.
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
from jobs.environments.keys import changed_inputs
from jobs.repo_config import RepoConfig, check_entry
from process import allowlist
from process.exceptions import RepoCacheError, RepoConfigError, StepFailed
from runs.artifacts import EgressReport
from runs.events import EnvironmentNoted, SetupEgress
from runs.record import Run
from sandboxes.cache import WorkspaceArchive
from sandboxes.config import SandboxConfig
from sandboxes.output_ends import output_ends
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
    if repo.environment.env:
        changes["env"] = {**base.env, **repo.environment.env}
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


def take_egress(sandbox: Sandbox) -> EgressReport | None:
    """Where the sandbox's setup reached since this was last asked (Docker; others have
    no proxy), so each setup is recorded once."""
    take = getattr(sandbox, "take_egress_report", None)
    report = take() if take is not None else None
    return report if isinstance(report, EgressReport) else None


def _tail(result: ExecResult) -> str:
    return excerpt(f"{result.stdout}\n{result.stderr}", 800)


def _denials(report: EgressReport | None) -> str:
    if report is None or not report.denied:
        return ""
    return (
        f" The egress proxy refused {', '.join(report.denied[:5])}: not on this run's "
        "allow-list (AGENTS_EGRESS_ALLOW, narrowed by network.allow), or an address it "
        "never connects to."
    )


def run_setup(
    sandbox: Sandbox, config: RepoConfig, commands: list[str] | None = None, kind: str = "setup"
) -> list[tuple[str, float]]:
    """The repository's setup commands (or ``commands``), in order, online through the
    egress proxy if setup may be; the first failure ends the run, naming the command
    and showing the first and last lines of its output (stderr joined to stdout, so
    they are in order) and the hosts the proxy refused.

    The sandbox is offline when this returns, whatever happened; where the commands
    went is kept on the sandbox (:func:`take_egress`).
    """
    done: list[tuple[str, float]] = []
    todo = config.setup if commands is None else commands
    if not todo:
        set_network(sandbox, config, "agent")
        return done
    set_network(sandbox, config, "setup")
    try:
        for command in todo:
            # command_timeout is already within the worker's (prepare.effective_config).
            result = sandbox.exec(f"exec 2>&1\n{command}", timeout=config.limits.command_timeout)
            if not result.ok:
                set_network(sandbox, config, "agent")
                what = "timed out" if result.timed_out else f"exited {result.exit_code}"
                if result.oom_killed:
                    what += " (out of memory)"
                shown = output_ends(f"{result.stdout}\n{result.stderr}")
                raise StepFailed(
                    f"{kind} command `{command[:300]}` {what}.{_denials(egress_report(sandbox))}"
                    f" Its output:\n{shown}"
                )
            done.append((command, result.duration))
    finally:
        set_network(sandbox, config, "agent")
    return done


def resetup(sandbox: Sandbox, config: RepoConfig) -> list[tuple[str, float]]:
    """Setup again in a run's sandbox whose change touched a dependency input: the setup
    commands, or ``environment.update`` when setup is a Dockerfile's."""
    commands = config.setup or config.environment.update
    return run_setup(sandbox, config, commands, kind="setup (a dependency input changed)")


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
    sandbox, setup, _ = open_sandbox_with_inputs(ctx, run, commit, patch)
    return sandbox, setup


def open_sandbox_with_inputs(
    ctx: RunContext, run: Run, commit: str, patch: str | None
) -> tuple[Sandbox, list[tuple[str, float]], str | None]:
    """:func:`open_sandbox`, plus the digest of the dependency inputs ``patch`` changes
    (setup has run again for them)."""
    from jobs.blueprint.environment import open_in_environment

    deps = ctx.deps
    config = ctx.repo_config()
    url = deps.forge.clone_url(run.repo)
    wanted = sandbox_config(deps.config.sandbox, config)
    if deps.environments is not None and config.has_environment:
        sandbox: Sandbox = open_in_environment(ctx, run, commit, config, wanted)
        setup: list[tuple[str, float]] = []
    else:
        sandbox = deps.sandboxes(str(run.id), wanted, workspace(deps, url, commit))
        setup = []
    digest = changed_inputs(patch, config.environment.key_files)
    try:
        if deps.environments is None or not config.has_environment:
            sandbox.start()
            setup = run_setup(sandbox, config)
        if patch:
            apply_patch(sandbox, patch)
        if digest is not None:
            setup += resetup(sandbox, config)
    except BaseException:
        sandbox.close()
        try:
            record_setup_egress(ctx, sandbox)  # where a failed setup went, too
        except Exception:
            log.exception("recording the egress of run #%s failed", run.id)
        raise
    return sandbox, setup, digest


class SandboxSession:
    """The current iteration's sandbox, created on first use and closed with the job."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._sandbox: Sandbox | None = None
        self.setup: list[tuple[str, float]] = []
        #: What the change had done to dependency inputs when setup last ran here.
        self._inputs: str | None = None

    def get(self, phase: Phase = "agent") -> Sandbox:
        if self._sandbox is None:
            run = self.ctx.run()
            start = run.artifacts.start_commit
            if start is None:
                raise StepFailed("the run has no start commit (prepare did not run)")
            self._sandbox, self.setup, self._inputs = open_sandbox_with_inputs(
                self.ctx, run, start, run.artifacts.patch
            )
            record_setup_egress(self.ctx, self._sandbox)
        config = self.ctx.repo_config()
        if phase == "checks":
            self._setup_if_inputs_changed(self._sandbox, config)
        if phase != "setup":  # setup ran (online) where it was due; never online again
            set_network(self._sandbox, config, phase)
        return self._sandbox

    def _setup_if_inputs_changed(self, sandbox: Sandbox, config: RepoConfig) -> None:
        """Before the checks: setup again if the change touched dependency inputs since
        it last ran in this sandbox (the environment image is not changed)."""
        run = self.ctx.run()
        digest = changed_inputs(run.artifacts.patch, config.environment.key_files)
        if digest is None or digest == self._inputs:
            return
        try:
            ran = resetup(sandbox, config)
        finally:
            record_setup_egress(self.ctx, sandbox)
        self._inputs = digest
        if not ran:
            return

        def counted(run: Run) -> None:
            if run.artifacts.environment is not None:
                run.artifacts.environment.updates += 1

        self.ctx.save(counted)
        self.ctx.record(
            EnvironmentNoted(
                by=self.ctx.by,
                text="the change touches a dependency input, so setup ran again in this run's "
                f"sandbox before the checks ({len(ran)} command(s)); the cached environment "
                "is unchanged",
            )
        )

    def close(self) -> None:
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            try:
                sandbox.close()
            except Exception:
                log.exception("closing the sandbox of run #%s failed", self.ctx.run_id)


def record_setup_egress(ctx: RunContext, sandbox: Sandbox) -> None:
    """Record where setup commands in ``sandbox`` went since this was last called."""
    report = take_egress(sandbox)
    if report is not None:
        record_egress(ctx, report)


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
