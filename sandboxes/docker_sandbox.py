"""The real backend: one hardened Docker container per run, driven only through the API.

Nothing here assumes the engine shares a filesystem with the worker: the workspace
goes in with ``put_archive`` into a per-container volume, files come back with
``get_archive``, and the patch comes back on a command's stdout. So the same code
works from a worker in a container that only has the Docker socket, and against a
remote ``DOCKER_HOST``.

The container runs ``sleep <max_lifetime>`` under Docker's init and is created with
``auto_remove``: when the lifetime is over it stops and disappears by itself, even if
the worker died long before. Commands run through :mod:`sandboxes.wrapper`, which
enforces their timeout inside the container.

The workspace is an anonymous volume, removed with the container: by default a
size-limited tmpfs (fast to fill, cannot exhaust the engine's disk, counted against
the memory limit), or with ``workspace_size_mb=None`` an unbounded disk volume. The
home directory and ``/tmp`` are size-limited tmpfs mounts too; all three allow exec
(virtualenvs, compiled extensions, test binaries), nothing else is writable. In an
environment's sandbox (``workspace_in_image``) the workspace and home directory are
on the container's own layer instead (:mod:`sandboxes.container_spec`).

A sandbox with ``network`` reaches the outside only through the egress proxy
(:mod:`sandboxes.egress_proxy`), on a network of its own whose only other member is
the proxy: from the start, or (an environment's sandbox, a warm pool's container,
which start with no network) when :meth:`DockerSandbox.set_network` connects it for
setup. Its commands get the proxy's variables while it is connected; going offline
removes that network and keeps where the commands went (:attr:`DockerSandbox.egress_report`).

An image other than the default must provide ``/bin/sh``, ``setsid``, ``sleep``,
``tar``, ``gzip``, ``find`` and ``git`` (for :meth:`DockerSandbox.export_patch`). With a
disk workspace it also needs a ``/workspace`` directory owned by the sandbox user, as a
fresh disk volume takes its owner from the image's directory.

Longer than most modules: one container's whole life (create with its hardening, exec under
the wrapper, network changes, export, remove) stays in one class, because each step relies
on what the others set up (labels, the owner, the workspace mount, the network).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import posixpath
import re
import secrets
import tarfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import docker
import docker.errors
from docker.models.containers import Container

from process.exceptions import (
    CommandTimeout,
    EgressUnavailable,
    SandboxError,
    SandboxGone,
    SandboxStartFailed,
)
from process.lifecycle import Lifecycle
from runs.artifacts import EgressReport
from sandboxes import container_spec, engine, labels, patch, paths, wrapper
from sandboxes.cache import WorkspaceArchive
from sandboxes.checkout import PACK_NAME, Checkout, checkout_argv
from sandboxes.config import ENV_HOME, HOME_SKELETON, WORKSPACE, EgressConfig, SandboxConfig
from sandboxes.egress_proxy import EgressLease, EgressProxy
from sandboxes.output import BoundedOutput
from sandboxes.owner import Owner
from sandboxes.protocol import ExecResult

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds the client waits beyond a command's timeout and grace before giving up.
WAIT_SLACK = 30.0
#: Seconds the client keeps reading after the wrapper's status line (stderr) while its
#: end line (stdout) has not arrived and the stream is still open: stdout can lag
#: behind stderr on a loaded engine or a slow link. Once both lines are in, all the
#: output is, and the client stops reading at once, even if a leftover process holds
#: the stream open.
LINGER = 10.0
HELPER_TIMEOUT = 120.0
_GO_MODE_DIR = 1 << 31
_GO_MODE_SYMLINK = 1 << 27
_MAX_LINKS = 8


@dataclass
class _Captured:
    stdout: BoundedOutput
    stderr: BoundedOutput
    status: wrapper.Status | None
    exit_code: int
    duration: float


class DockerSandbox(Lifecycle):
    """One run's container. Create it, :meth:`start` it (or use ``with``), then use it."""

    def __init__(
        self,
        run_id: str,
        config: SandboxConfig | None = None,
        *,
        workspace: WorkspaceArchive | None = None,
        client: docker.DockerClient | None = None,
        checkout: Checkout | None = None,
        container: Container | None = None,
        egress: EgressConfig | None = None,
    ) -> None:
        """``checkout``: with an environment's image (``workspace_in_image``), the
        commit to move its checkout to. ``container``: a started container to adopt
        instead of creating one (claimed from a warm pool, :mod:`sandboxes.pool`)."""
        self.run_id = run_id
        self.config = config or SandboxConfig()
        self.workspace = workspace
        self.checkout = checkout
        if workspace is not None:
            self.base_commit: str | None = workspace.base_commit
        else:
            self.base_commit = checkout.commit if checkout else None
        self._client = client
        self._owns_client = client is None
        self._container: Container | None = None
        self._adopted = container
        self._closed = False
        self._egress = egress or EgressConfig()
        self._lease: EgressLease | None = None
        #: Where the sandbox's commands reached through the proxy, once it went offline.
        self.egress_report: EgressReport | None = None
        self._untaken: EgressReport | None = None

    # -- lifecycle ------------------------------------------------------------------

    @property
    def container_id(self) -> str | None:
        return None if self._container is None else str(self._container.id)

    def start(self) -> None:
        """Create and start the container (or take over the adopted one) and move the
        workspace in: unpack the archive, or check the environment's checkout out at
        its commit. Idempotent."""
        if self._container is not None:
            return
        if self._closed:
            raise SandboxGone(self.run_id, "the sandbox was closed")
        config = self.config
        adopted, self._adopted = self._adopted, None
        container = adopted if adopted is not None else self._create(self._connect())
        self._container = container
        try:
            if adopted is None:
                container.start()
            if self._lease is not None:
                lease = self._lease
                self._egress_call(lambda: lease.admit(container))
            if self.workspace is not None:
                if config.workspace_in_image:
                    self._own_dirs()
                self._unpack(self.workspace)
            elif not config.workspace_in_image:
                self._unpack(None)
            if self.checkout is not None:
                self._check_out(self.checkout)
        except (docker.errors.DockerException, SandboxError) as exc:
            self.close()
            if isinstance(exc, EgressUnavailable):
                raise
            raise SandboxStartFailed(self.run_id, f"starting the container failed: {exc}") from exc
        log.info("sandbox for run %s started: container %s", self.run_id, container.short_id)

    def _create(self, client: docker.DockerClient) -> Container:
        """A new container: on a network of its own behind the egress proxy when the
        config asks for network (an environment's sandbox starts offline and connects
        only for setup), else with none."""
        config = self.config
        now = datetime.now(UTC)
        run_labels = labels.sandbox_labels(
            self.run_id, Owner.current(), now, config.max_lifetime, config.store
        )
        network_mode = "none"
        if config.network and not config.workspace_in_image:
            lease = EgressLease(EgressProxy(client, self._egress), self.run_id, config.allow)
            lease.network_labels = run_labels
            network_mode = self._egress_call(lambda: lease.start().name)
            self._lease = lease
        options = container_spec.create_options(
            config,
            name=_container_name(self.run_id),
            container_labels=run_labels,
            volume_run_id=self.run_id,
            network_mode=network_mode,
        )
        try:
            return client.containers.create(**options)
        except docker.errors.ImageNotFound:
            self._end_lease()
            self._release_client()
            raise SandboxStartFailed(
                self.run_id,
                f"image {config.image} is not on this Docker engine; "
                "build it with `agents sandbox build`",
            ) from None
        except docker.errors.DockerException as exc:
            self._end_lease()
            self._release_client()
            raise SandboxStartFailed(self.run_id, f"Docker refused the container: {exc}") from exc

    def _egress_call(self, action: Callable[[], T]) -> T:
        """Run one egress step, naming this run in its error."""
        try:
            return action()
        except EgressUnavailable as exc:
            raise EgressUnavailable(self.run_id, exc.message) from None
        except docker.errors.DockerException as exc:
            raise EgressUnavailable(self.run_id, f"the egress proxy: {exc}") from exc

    def _own_dirs(self) -> None:
        """Make the workspace and home directory the sandbox user's, whatever image this
        is: the engine applies a tar's owners as it writes, without any capability in
        the container (an environment is built on a repository's own image too)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for directory in (WORKSPACE, ENV_HOME):
                info = tarfile.TarInfo(directory.lstrip("/"))
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                info.uid, info.gid = self.config.uid, self.config.gid
                info.mtime = int(time.time())
                tar.addfile(info)
        self._call(lambda: self._require().put_archive("/", buf.getvalue()))

    def _check_out(self, checkout: Checkout) -> None:
        """Move the environment's checkout to the run's commit (:mod:`sandboxes.checkout`)."""
        if checkout.already_there:
            return
        if checkout.pack:
            info = tarfile.TarInfo(PACK_NAME.rpartition("/")[2])
            info.size = len(checkout.pack)
            info.mode = 0o600
            info.uid, info.gid = self.config.uid, self.config.gid
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                tar.addfile(info, io.BytesIO(checkout.pack))
            target = paths.join(WORKSPACE, PACK_NAME.rpartition("/")[0])
            self._call(lambda: self._require().put_archive(target, buf.getvalue()))
        moved = self._run(
            checkout_argv(checkout.commit),
            timeout=HELPER_TIMEOUT,
            cwd=WORKSPACE,
            env={},
            limit=16_000,
        )
        if moved.exit_code != 0:
            raise SandboxError(
                self.run_id,
                f"checking out {checkout.commit[:12]} in the environment failed "
                f"(exit {moved.exit_code}): {moved.stderr.text().strip()[-2000:]}",
            )

    def snapshot(self, repository: str, tag: str, image_labels: dict[str, str]) -> str:
        """Commit the container (its own layer: the workspace and home directory of an
        environment) as an image with these labels; returns the image id.

        The container's own labels would be inherited by the image, and from it by
        every container started from it: the sandbox labels are blanked, so only the
        ones a new container sets count.
        """
        container = self._require()
        blank = {key: "" for key in labels.SANDBOX_KEYS}
        wanted = {**blank, **image_labels}
        changes = [f"LABEL {json.dumps(k)}={json.dumps(v)}" for k, v in wanted.items()]
        image = self._call(
            lambda: container.commit(repository=repository, tag=tag, changes=changes, pause=True)
        )
        return str(image.id)

    def _unpack(self, workspace: WorkspaceArchive | None) -> None:
        """Fill the home directory from the image's skeleton, and move the workspace in
        as one file and unpack it as the sandbox user.

        One file through the API and one ``tar`` inside is much faster than letting the
        engine create thousands of files, and the files belong to the sandbox user.
        """
        script = 'if [ -d "$1" ]; then cp -a "$1"/. "$2"/ || exit 1; fi'
        argv = ["sh", "-c", script, "agents-unpack", HOME_SKELETON, self.config.home]
        if workspace is not None:
            name = f".agents-workspace-{secrets.token_hex(4)}.tar.gz"
            info = tarfile.TarInfo(name)
            info.size = len(workspace.archive)
            info.mode = 0o600
            info.uid, info.gid = self.config.uid, self.config.gid
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                tar.addfile(info, io.BytesIO(workspace.archive))
            self._call(lambda: self._require().put_archive(WORKSPACE, buf.getvalue()))
            argv[2] = script + '; tar -xzf "$3" && rm -f "$3"'
            argv.append(name)
        unpacked = self._run(argv, timeout=HELPER_TIMEOUT, cwd=WORKSPACE, env={}, limit=16_000)
        if unpacked.exit_code != 0:
            raise SandboxError(
                self.run_id,
                f"unpacking the workspace failed (exit {unpacked.exit_code}): "
                f"{unpacked.stderr.text().strip()}",
            )

    def close(self) -> None:
        """Remove the container, its workspace volume and its network. Safe to call twice."""
        self._closed = True
        container, self._container = self._container, None
        if self._lease is not None and container is not None:
            self._keep_report()
        if container is not None:
            try:
                container.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                # 409: removal already in progress (auto_remove after it stopped).
                if exc.status_code != 409:
                    log.warning("removing sandbox container %s failed: %s", container.id, exc)
        self._end_lease()
        self._release_client()

    def set_network(self, enabled: bool) -> None:
        """Go offline (``False``; e.g. after setup), or online (again) through a new
        network of its own behind the egress proxy (e.g. for setup in an environment's
        sandbox or a warm pool's container, which start with no network).

        Only a sandbox whose config has ``network`` can go online. Going offline keeps
        where the sandbox went in :attr:`egress_report`.
        """
        container = self._require()
        if not self.config.network:
            if enabled:
                raise SandboxError(self.run_id, "started without a network; cannot connect one")
            return
        if not enabled and self._lease is not None:
            lease = self._lease
            self._keep_report()
            if lease.network is not None:
                network = lease.network
                self._call(
                    lambda: self._connect().api.disconnect_container_from_network(
                        str(container.id), network.id, force=True
                    )
                )
            self._end_lease()
        elif enabled and self._lease is None:
            client = self._connect()
            lease = EgressLease(EgressProxy(client, self._egress), self.run_id, self.config.allow)
            config = self.config
            lease.network_labels = labels.sandbox_labels(
                self.run_id, Owner.current(), datetime.now(UTC), config.max_lifetime, config.store
            )
            self._lease = lease
            try:
                network = self._egress_call(lease.start)
                if "none" in self._call(lambda: self._networks(container)):
                    # Created with no network: the engine connects no other until it
                    # leaves "none" (the loopback interface stays).
                    self._call(
                        lambda: client.api.disconnect_container_from_network(
                            str(container.id), "none"
                        )
                    )
                self._call(
                    lambda: client.api.connect_container_to_network(str(container.id), network.id)
                )
                self._egress_call(lambda: lease.admit(container))
            except BaseException:
                self._end_lease()
                raise

    def _keep_report(self) -> None:
        lease = self._lease
        if lease is None:
            return
        try:
            report = lease.report()
        except docker.errors.DockerException as exc:
            log.warning("run %s: reading the egress log failed: %s", self.run_id, exc)
            return
        kept = self.egress_report
        self.egress_report = report if kept is None else kept.merged(report)
        untaken = self._untaken
        self._untaken = report if untaken is None else untaken.merged(report)

    def take_egress_report(self) -> EgressReport | None:
        """Where the sandbox went since the last call (each time it went offline), so a
        caller records each setup once; :attr:`egress_report` keeps the whole."""
        report, self._untaken = self._untaken, None
        return report

    def _end_lease(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            try:
                lease.close()
            except docker.errors.DockerException as exc:
                log.warning("run %s: removing the sandbox network failed: %s", self.run_id, exc)

    # -- commands -------------------------------------------------------------------

    def exec(
        self,
        cmd: str | Sequence[str],
        timeout: float | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        """Run ``cmd`` (a string goes to ``sh -c``) in the workspace, or in ``cwd``.

        ``env`` adds to the sandbox's fixed, minimal environment; nothing comes from
        the worker's. The timeout is enforced inside the container; see the wrapper.
        """
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        if not argv:
            raise ValueError("empty command")
        limit = timeout if timeout is not None else self.config.command_timeout
        if limit <= 0:
            raise ValueError("timeout must be positive")
        online = self._lease.env if self._lease is not None else {}
        captured = self._run(
            argv,
            timeout=limit,
            cwd=_workdir(cwd),
            env={**online, **_checked_env(env or {})},
            limit=self.config.max_output_bytes,
        )
        status = captured.status
        return ExecResult(
            exit_code=captured.exit_code,
            stdout=captured.stdout.text(),
            stderr=captured.stderr.text(),
            duration=captured.duration,
            timed_out=bool(status and status.timed_out),
            oom_killed=bool(status and status.oom_kills > 0),
            stdout_truncated=captured.stdout.cut,
            stderr_truncated=captured.stderr.cut,
        )

    def _run(
        self,
        argv: list[str],
        *,
        timeout: float,
        cwd: str,
        env: Mapping[str, str],
        limit: int,
    ) -> _Captured:
        container = self._require()
        api = self._connect().api
        invocation = wrapper.wrap(argv, timeout, self.config.kill_grace)
        started = time.monotonic()
        exec_id = self._call(
            lambda: api.exec_create(
                container.id,
                invocation.argv,
                stdout=True,
                stderr=True,
                user=self.config.user,
                workdir=cwd,
                environment={**env, **invocation.env},
            )["Id"]
        )
        stream = self._call(lambda: api.exec_start(exec_id, stream=True, demux=True))
        stdout = BoundedOutput(limit, reserve=len(invocation.end_bytes))
        stderr = BoundedOutput(limit)
        reader = _StreamReader(
            stream, stdout, stderr, (invocation.end_line, invocation.status_line)
        )
        deadline = started + timeout + self.config.kill_grace + WAIT_SLACK
        try:
            finished = reader.wait(deadline)
        finally:
            reader.stop()
        if not finished:
            raise CommandTimeout(
                self.run_id,
                f"no result {timeout + self.config.kill_grace + WAIT_SLACK:.0f}s after starting "
                f"{argv[0]!r} (timeout {timeout:.0f}s); the sandbox may be stuck",
            )
        if reader.error is not None:
            self._raise_if_gone()
            raise SandboxError(self.run_id, f"reading command output failed: {reader.error}")
        stdout.take_last(invocation.end_line)
        status = wrapper.parse_status(stderr.take_last(invocation.status_line))
        if status is None:
            self._raise_if_gone()
            code = self._call(lambda: api.exec_inspect(exec_id)).get("ExitCode")
            exit_code = code if isinstance(code, int) else -1
        else:
            exit_code = status.exit_code
        return _Captured(stdout, stderr, status, exit_code, time.monotonic() - started)

    # -- files ----------------------------------------------------------------------

    def read_file(self, path: str) -> bytes:
        """The bytes of a workspace file, following symlinks inside the container."""
        container = self._require()
        target, stat = self._follow(paths.join(WORKSPACE, path))
        if stat is None:
            raise FileNotFoundError(f"no such file in the workspace: {path}")
        if stat["mode"] & _GO_MODE_DIR:
            raise IsADirectoryError(f"is a directory: {path}")
        chunks, _ = self._call(lambda: container.get_archive(target))
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.next()
            handle = tar.extractfile(member) if member is not None else None
            if handle is None:
                raise SandboxError(self.run_id, f"{path}: not a regular file")
            return handle.read()

    def write_file(self, path: str, data: bytes, mode: int | None = None) -> None:
        """Create or replace a workspace file, creating parent directories as needed.

        Without ``mode`` an existing file keeps its mode and a new one gets 0644.
        """
        container = self._require()
        target, existing = self._follow(paths.join(WORKSPACE, path))
        if existing is not None and existing["mode"] & _GO_MODE_DIR:
            raise IsADirectoryError(f"is a directory: {path}")
        if mode is None:
            mode = existing["mode"] & 0o7777 if existing is not None else 0o644
        parent, name = posixpath.split(target)
        if existing is None and self._stat(parent) is None:
            made = self._run(
                ["mkdir", "-p", "--", parent],
                timeout=HELPER_TIMEOUT,
                cwd=WORKSPACE,
                env={},
                limit=4096,
            )
            if made.exit_code != 0:
                raise SandboxError(
                    self.run_id, f"cannot create {posixpath.dirname(path)}: {made.stderr.text()}"
                )
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode
        info.uid, info.gid = self.config.uid, self.config.gid
        info.mtime = int(time.time())
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.addfile(info, io.BytesIO(data))
        self._call(lambda: container.put_archive(parent, buf.getvalue()))

    def list_files(self, path: str = ".", limit: int = 10_000) -> list[str]:
        """Files and symlinks under ``path``, relative to the workspace root, sorted.

        ``.git`` is left out. At most ``limit`` names; if there are more, which ones are
        returned is up to ``find``.
        """
        relative = paths.workspace_relative(path)
        self._require()
        self._follow(paths.join(WORKSPACE, relative))  # refuses symlinks leading out
        captured = self._run(
            [
                "find",
                relative,
                "-mindepth",
                "1",
                "-name",
                ".git",
                "-prune",
                "-o",
                "(",
                "-type",
                "f",
                "-o",
                "-type",
                "l",
                ")",
                "-print0",
            ],
            timeout=HELPER_TIMEOUT,
            cwd=WORKSPACE,
            env={},
            limit=2 * min(max(limit, 1) * 1024, 64 * 1024 * 1024),
        )
        out = captured.stdout
        raw = out.data() if not out.cut else out.head().rpartition(b"\0")[0]
        names = [n.decode("utf-8", errors="surrogateescape") for n in raw.split(b"\0") if n]
        if captured.exit_code != 0 and not names:
            raise FileNotFoundError(
                f"cannot list {path}: {captured.stderr.text().strip() or 'find failed'}"
            )
        return sorted(posixpath.normpath(n) for n in names)[:limit]

    def export_patch(self) -> bytes:
        """The binary git patch from the base commit to the workspace as it is now."""
        if self.base_commit is None:
            raise SandboxError(self.run_id, "started without a repository; nothing to diff")
        captured = self._run(
            patch.export_argv(self.base_commit),
            timeout=HELPER_TIMEOUT,
            cwd=WORKSPACE,
            env={},
            limit=self.config.max_patch_bytes,
        )
        if captured.exit_code != 0:
            raise SandboxError(
                self.run_id,
                f"exporting the patch failed (exit {captured.exit_code}): "
                f"{captured.stderr.text().strip()}",
            )
        if captured.stdout.cut:
            raise SandboxError(
                self.run_id,
                f"the patch is larger than {self.config.max_patch_bytes} bytes; "
                "is a build directory missing from .gitignore?",
            )
        return captured.stdout.data()

    # -- plumbing -------------------------------------------------------------------

    def _connect(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = engine.connect()
            except docker.errors.DockerException as exc:
                raise SandboxStartFailed(
                    self.run_id, f"Docker is not reachable (DOCKER_HOST or socket): {exc}"
                ) from exc
        return self._client

    def _release_client(self) -> None:
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    def _require(self) -> Container:
        if self._container is None:
            if self._closed:
                raise SandboxGone(self.run_id, "the sandbox was closed")
            raise SandboxError(self.run_id, "the sandbox is not started; call start() first")
        return self._container

    def _call(self, action: Callable[[], T]) -> T:
        """Run one API call, turning "no such container" into :class:`SandboxGone`."""
        try:
            return action()
        except docker.errors.NotFound as exc:
            self._raise_if_gone()
            raise SandboxError(self.run_id, str(exc.explanation or exc)) from exc
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                self._raise_if_gone()
            raise SandboxError(self.run_id, str(exc.explanation or exc)) from exc
        except docker.errors.DockerException as exc:
            raise SandboxError(self.run_id, str(exc)) from exc

    def _raise_if_gone(self) -> None:
        container = self._require()
        try:
            container.reload()
        except docker.errors.NotFound:
            raise SandboxGone(
                self.run_id,
                "the container no longer exists (max lifetime reached, reaped or removed)",
            ) from None
        if container.status != "running":
            raise SandboxGone(self.run_id, f"the container is {container.status}, not running")

    def _stat(self, target: str) -> dict[str, Any] | None:
        """Docker's stat of an in-container path (name, size, mode, linkTarget), or None."""
        container = self._require()
        api = self._connect().api
        url = f"{api.base_url}/v{api.api_version}/containers/{container.id}/archive"
        response = self._call(lambda: api.head(url, params={"path": target}, timeout=api.timeout))
        try:
            if response.status_code == 404:
                self._raise_if_gone()
                return None
            if response.status_code != 200:
                raise SandboxError(self.run_id, f"stat of {target} failed: {response.reason}")
            header = response.headers.get("X-Docker-Container-Path-Stat", "")
            stat: dict[str, Any] = json.loads(base64.b64decode(header))
            return stat
        finally:
            response.close()

    def _follow(self, target: str) -> tuple[str, dict[str, Any] | None]:
        """Resolve symlinks the way the container would, in every component, like
        ``realpath -m``; the final path and its stat (None: it does not exist).

        Raises ``ValueError`` when the result is not inside the workspace: a symlink (or
        a symlinked parent directory) may not lead the file methods out of it.
        """
        done = "/"
        pending = [p for p in target.split("/") if p]
        hops = 0
        stat: dict[str, Any] | None = None
        stat_of = ""
        while pending:
            name = pending.pop(0)
            if name == ".":
                continue
            if name == "..":
                done = posixpath.dirname(done)
                continue
            candidate = posixpath.join(done, name)
            stat, stat_of = self._stat(candidate), candidate
            if stat is not None and stat["mode"] & _GO_MODE_SYMLINK:
                hops += 1
                if hops > _MAX_LINKS:
                    raise OSError(f"too many levels of symbolic links: {target}")
                link = str(stat["linkTarget"])
                if link.startswith("/"):
                    done = "/"
                pending = [p for p in link.split("/") if p] + pending
                continue
            done = candidate
            if stat is None:
                # Nothing below a missing directory exists, so the rest is plain names.
                # A ".." after it would be resolved lexically by the archive API (the
                # kernel would refuse it), so it is refused here too.
                if ".." in pending:
                    raise ValueError(
                        f"{target!r} leads outside the workspace (with '..' after a directory"
                        " that does not exist)"
                    )
                done = posixpath.join(done, *[p for p in pending if p != "."])
                break
        if done != WORKSPACE and not done.startswith(WORKSPACE.rstrip("/") + "/"):
            relative = target.removeprefix(WORKSPACE).lstrip("/") or "."
            raise ValueError(f"{relative!r} leads outside the workspace (through a symlink)")
        if stat is not None and stat_of != done:
            stat = self._stat(done)  # the path ended in "." or ".." from a link target
        return done, stat

    @staticmethod
    def _networks(container: Container) -> set[str]:
        container.reload()
        return set(container.attrs.get("NetworkSettings", {}).get("Networks", {}) or {})


class _StreamReader:
    """Pumps an exec's multiplexed output into bounded buffers on a helper thread.

    The thread lets the caller stop waiting at a deadline however the stream behaves,
    and notice the wrapper's own lines even if a leftover process keeps the stream
    open. The engine forwards stdout and stderr in no fixed order between them, so the
    output is complete once the wrapper's line has been seen on both.
    """

    def __init__(
        self,
        stream: Any,
        stdout: BoundedOutput,
        stderr: BoundedOutput,
        last_lines: tuple[re.Pattern[bytes], re.Pattern[bytes]],
    ) -> None:
        """``last_lines``: the wrapper's line on stdout and its line on stderr."""
        self._stream = stream
        self._outputs = (stdout, stderr)
        self._last_lines = last_lines
        self._windows = [b"", b""]
        #: When the wrapper's line was first seen on stdout and on stderr.
        self._seen_at: list[float | None] = [None, None]
        self._done = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._pump, name="sandbox-exec", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            for chunks in self._stream:
                for index, chunk in enumerate(chunks):
                    if chunk:
                        self._feed(index, chunk)
        except Exception as exc:  # handed to the caller, which raises a typed error
            self.error = exc
        finally:
            self._done.set()

    def _feed(self, index: int, chunk: bytes) -> None:
        self._outputs[index].feed(chunk)
        self._windows[index] = (self._windows[index] + chunk)[-256:]
        if self._seen_at[index] is None and self._last_lines[index].search(self._windows[index]):
            self._seen_at[index] = time.monotonic()

    def wait(self, deadline: float) -> bool:
        """True once the stream ended, or both of the wrapper's lines are in (or its
        status line came LINGER seconds ago); False at the deadline."""
        while not self._done.wait(0.05):
            out_seen, err_seen = self._seen_at
            if out_seen is not None and err_seen is not None:
                return True
            now = time.monotonic()
            if err_seen is not None and now - err_seen > LINGER:
                return True
            if now > deadline:
                return False
        return True

    def stop(self) -> None:
        """Close the stream (which ends a blocked read) and let the thread finish."""
        with contextlib.suppress(OSError, docker.errors.DockerException):
            self._stream.close()
        self._thread.join(timeout=5)
        # CancellableStream.close() shuts the socket but leaves the HTTP response
        # holding it; without this the socket is only freed (with a ResourceWarning)
        # when garbage collected.
        response = getattr(self._stream, "_response", None)
        if response is not None:
            with contextlib.suppress(OSError):
                response.close()


def _container_name(run_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", run_id).strip("-.")[:40] or "run"
    return f"agents-{safe}-{secrets.token_hex(3)}"


def _workdir(cwd: str | None) -> str:
    if cwd is None:
        return WORKSPACE
    if cwd.startswith("/"):
        return posixpath.normpath(cwd)
    return paths.join(WORKSPACE, cwd)


def _checked_env(env: Mapping[str, str]) -> dict[str, str]:
    for name, value in env.items():
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise ValueError(f"invalid environment variable {name!r}")
    return dict(env)
