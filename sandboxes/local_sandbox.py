"""A development backend: commands run as plain subprocesses in a temporary directory.

It does NOT isolate anything. Commands run as the worker's user, with its network,
its files and no resource limits; only the environment is kept minimal. It exists so
the bot can be developed on a machine without Docker, logs a warning every time one
is started, and is never chosen silently when Docker is configured but broken (see
:mod:`sandboxes.factory`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import select
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from process.exceptions import SandboxError, SandboxGone, SandboxStartFailed
from process.lifecycle import Lifecycle
from sandboxes import patch, paths
from sandboxes.cache import WorkspaceArchive
from sandboxes.config import DEFAULT_PATH, SandboxConfig
from sandboxes.output import BoundedOutput
from sandboxes.protocol import ExecResult
from sandboxes.wrapper import TIMEOUT_EXIT_CODE

log = logging.getLogger(__name__)

WARNING = (
    "LocalSandbox for run %s does NOT isolate anything: commands run as this user on "
    "this machine, with its network and files and no limits. Use it only for "
    "development without Docker."
)
#: Seconds to keep reading after the command exited, if a leftover still holds a pipe.
LINGER = 1.0
HELPER_TIMEOUT = 120.0


class LocalSandbox(Lifecycle):
    """Subprocesses in ``<tmp>/workspace``; same interface as the Docker backend."""

    def __init__(
        self,
        run_id: str,
        config: SandboxConfig | None = None,
        *,
        workspace: WorkspaceArchive | None = None,
        parent: Path | None = None,
    ) -> None:
        self.run_id = run_id
        self.config = config or SandboxConfig()
        self.workspace = workspace
        self.base_commit = workspace.base_commit if workspace else None
        self._parent = parent
        self._root: Path | None = None
        self._closed = False

    @property
    def root(self) -> Path:
        """The workspace directory on this machine."""
        if self._root is None:
            if self._closed:
                raise SandboxGone(self.run_id, "the sandbox was closed")
            raise SandboxError(self.run_id, "the sandbox is not started; call start() first")
        return self._root / "workspace"

    def start(self) -> None:
        if self._root is not None:
            return
        if self._closed:
            raise SandboxGone(self.run_id, "the sandbox was closed")
        log.warning(WARNING, self.run_id)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.run_id)[:40]
        try:
            root = Path(tempfile.mkdtemp(prefix=f"agents-local-{safe}-", dir=self._parent))
        except OSError as exc:
            raise SandboxStartFailed(self.run_id, f"no temporary directory: {exc}") from exc
        try:
            for sub in ("workspace", "home", "tmp"):
                (root / sub).mkdir()
            if self.workspace is not None:
                with tarfile.open(fileobj=io.BytesIO(self.workspace.archive)) as tar:
                    # The "tar" filter refuses absolute paths and paths that escape.
                    tar.extractall(root / "workspace", filter=_keep_own_user)  # noqa: S202
        except (OSError, tarfile.TarError) as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise SandboxStartFailed(self.run_id, f"unpacking the workspace: {exc}") from exc
        self._root = root

    def close(self) -> None:
        self._closed = True
        root, self._root = self._root, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)

    # -- commands -------------------------------------------------------------------

    def exec(
        self,
        cmd: str | Sequence[str],
        timeout: float | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        if not argv:
            raise ValueError("empty command")
        limit = timeout if timeout is not None else self.config.command_timeout
        if limit <= 0:
            raise ValueError("timeout must be positive")
        workdir = self.root if cwd is None else self._host_path(cwd)
        out, err = (
            BoundedOutput(self.config.max_output_bytes),
            BoundedOutput(self.config.max_output_bytes),
        )
        code, timed_out, duration = self._run(argv, workdir, dict(env or {}), limit, out, err)
        return ExecResult(
            exit_code=code,
            stdout=out.text(),
            stderr=err.text(),
            duration=duration,
            timed_out=timed_out,
            stdout_truncated=out.cut,
            stderr_truncated=err.cut,
        )

    def _environment(self, extra: Mapping[str, str]) -> dict[str, str]:
        assert self._root is not None
        return {
            # PATH is the one thing taken from the worker: tools live in different
            # places on developer machines, and it holds no secret.
            "PATH": os.environ.get("PATH", DEFAULT_PATH),
            "HOME": str(self._root / "home"),
            "TMPDIR": str(self._root / "tmp"),
            "LANG": "C.UTF-8",
            **self.config.env,
            **extra,
        }

    def _run(
        self,
        argv: list[str],
        workdir: Path,
        env: dict[str, str],
        timeout: float,
        out: BoundedOutput,
        err: BoundedOutput,
    ) -> tuple[int, bool, float]:
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=workdir,
                env=self._environment(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            err.feed(f"{argv[0]}: {exc.strerror or exc}\n".encode())
            return 127, False, time.monotonic() - started
        assert proc.stdout is not None
        assert proc.stderr is not None
        readers = [_Pump(proc.stdout, out), _Pump(proc.stderr, err)]
        timed_out = False
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=self.config.kill_grace)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
            code = TIMEOUT_EXIT_CODE
        _signal_group(proc.pid, signal.SIGKILL)  # what is left of its process group
        for reader in readers:
            reader.finish(LINGER)
        proc.stdout.close()
        proc.stderr.close()
        return code, timed_out, time.monotonic() - started

    # -- files ----------------------------------------------------------------------

    def read_file(self, path: str) -> bytes:
        target = self._host_path(path)
        if target.is_dir():
            raise IsADirectoryError(f"is a directory: {path}")
        try:
            return target.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"no such file in the workspace: {path}") from None

    def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        target = self._host_path(path)
        if target == self.root or target.is_dir():
            raise IsADirectoryError(f"is a directory: {path}")
        if mode is None:
            mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)

    def list_files(self, path: str = ".", limit: int = 10_000) -> list[str]:
        start = self._host_path(path)
        if not start.is_dir():
            raise FileNotFoundError(f"cannot list {path}: not a directory in the workspace")
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            here = Path(dirpath)
            links = [d for d in dirnames if (here / d).is_symlink()]
            dirnames[:] = [d for d in dirnames if d != ".git" and d not in links]
            for name in [*filenames, *links]:
                if name != ".git":
                    found.append((here / name).relative_to(self.root).as_posix())
        return sorted(found)[:limit]

    def export_patch(self) -> bytes:
        if self.base_commit is None:
            raise SandboxError(self.run_id, "started without a repository; nothing to diff")
        out, err = BoundedOutput(self.config.max_patch_bytes), BoundedOutput(64_000)
        code, _, _ = self._run(
            patch.export_argv(self.base_commit), self.root, {}, HELPER_TIMEOUT, out, err
        )
        if code != 0:
            raise SandboxError(
                self.run_id, f"exporting the patch failed (exit {code}): {err.text().strip()}"
            )
        if out.cut:
            raise SandboxError(
                self.run_id,
                f"the patch is larger than {self.config.max_patch_bytes} bytes; "
                "is a build directory missing from .gitignore?",
            )
        return out.data()

    def _host_path(self, path: str) -> Path:
        """The host path for a workspace path; symlinks may not lead out of the workspace."""
        root = self.root
        target = root / paths.workspace_relative(path)
        resolved = target.resolve()
        if resolved != root.resolve() and not resolved.is_relative_to(root.resolve()):
            raise ValueError(f"{path!r} leads outside the workspace")
        return target


def _keep_own_user(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """The "tar" extraction filter, minus ownership: files belong to whoever runs this."""
    filtered = tarfile.tar_filter(member, dest)
    return filtered.replace(uid=None, gid=None, uname=None, gname=None, deep=False)  # type: ignore[arg-type]


class _Pump(threading.Thread):
    """Copies one pipe into a bounded buffer until EOF or until told to stop.

    Stopping matters when a process the command left behind keeps the pipe open: the
    caller stops waiting for it after a moment instead of forever.
    """

    def __init__(self, stream: IO[bytes], sink: BoundedOutput) -> None:
        super().__init__(name="local-sandbox-output", daemon=True)
        self._fd = stream.fileno()
        self._sink = sink
        self._halt = threading.Event()
        self.start()

    def run(self) -> None:
        while not self._halt.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.1)
            if ready:
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    return
                self._sink.feed(chunk)

    def finish(self, linger: float) -> None:
        self.join(timeout=linger)
        self._halt.set()
        self.join()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
