"""How a sandbox container is created: one function, so a run's sandbox and a warm
pool's idle container (:mod:`sandboxes.pool`) are hardened exactly alike.

Two kinds of workspace:

* the default: the workspace is an anonymous volume (a size-limited tmpfs, or disk),
  the home directory a size-limited tmpfs (filled from the image's skeleton when the
  sandbox starts) and the root filesystem is read-only;
* ``workspace_in_image`` (an environment, :mod:`sandboxes.env_images`): the checkout
  and what setup installed are part of the image, so the workspace is the container's
  own copy-on-write layer and starts in milliseconds whatever its size. The root
  filesystem is then writable only where the image lets uid 1000 write (the
  workspace, the home directory, caches an image made for it); the directories a
  Debian image leaves writable by anyone are covered with read-only tmpfs. Writes go
  to the engine's disk, as with ``workspace_size_mb=None``.

Everything else is the same: ``/tmp`` a size-limited tmpfs, exec allowed in the
workspace, home and ``/tmp`` (virtualenvs, compiled extensions, test binaries), PATH
and the like from the image (the default image's virtualenv is active), no network
unless the caller gives one (the egress proxy's, :mod:`sandboxes.docker_sandbox`;
never for a warm pool's container), every capability dropped, no-new-privileges, a non-root
numeric user, memory (without swap), CPU and PID limits, no core dumps, no IPC unless
asked, Docker's init, and ``auto_remove`` so the container disappears when its
``sleep`` ends.
"""

from __future__ import annotations

from typing import Any

from docker.types import DriverConfig, Mount, Ulimit

from sandboxes import labels
from sandboxes.config import ENV_HOME, SEALED_DIRS, WORKSPACE, SandboxConfig

#: The sandbox's own size-limited tmpfs.
TMP = "/tmp"  # noqa: S108 - inside the container, not the worker's /tmp


def create_options(
    config: SandboxConfig,
    *,
    name: str,
    container_labels: dict[str, str],
    volume_run_id: str,
    lifetime: int | None = None,
    network_mode: str = "none",
) -> dict[str, Any]:
    """Keyword arguments for ``client.containers.create`` (image and command included).

    ``lifetime``: seconds the container's ``sleep`` lasts (``config.max_lifetime`` by
    default; a pool's idle container waits a while before its run's lifetime starts).
    ``network_mode``: ``none``, or the sandbox's own network behind the egress proxy.
    """
    in_image = config.workspace_in_image
    tmpfs = {TMP: f"rw,exec,nosuid,nodev,size={config.tmp_size_mb}m,mode=1777"}
    if in_image:
        tmpfs.update({path: "ro,nosuid,nodev,noexec,size=4k" for path in SEALED_DIRS})
    else:
        tmpfs[config.home] = (
            f"rw,exec,nosuid,nodev,size={config.home_size_mb}m,"
            f"uid={config.uid},gid={config.gid},mode=0755"
        )
    return {
        "image": config.image,
        "command": ["sleep", str(lifetime or config.max_lifetime)],
        "name": name,
        "hostname": "sandbox",
        "user": config.user,
        "working_dir": WORKSPACE,
        "environment": {
            "HOME": ENV_HOME if in_image else config.home,
            "LANG": "C.UTF-8",
            **config.env,
        },
        "labels": container_labels,
        "network_mode": network_mode,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "read_only": not in_image,
        "tmpfs": tmpfs,
        "mounts": [] if in_image else [workspace_mount(config, volume_run_id)],
        "mem_limit": f"{config.memory_mb}m",
        "memswap_limit": f"{config.memory_mb}m",
        "nano_cpus": round(config.cpus * 1e9),
        "pids_limit": config.pids,
        "ulimits": [Ulimit(name="core", soft=0, hard=0)],
        **shm_options(config),
        "init": True,
        "auto_remove": True,
    }


def shm_options(config: SandboxConfig) -> dict[str, Any]:
    """A private, size-limited /dev/shm, or none at all."""
    size = config.shm_size_mb
    return {"ipc_mode": "none"} if size == 0 else {"ipc_mode": "private", "shm_size": f"{size}m"}


def workspace_mount(config: SandboxConfig, run_id: str) -> Mount:
    """An anonymous volume, removed with the container: tmpfs (sized) or disk.

    It is labelled with the run id, so the reaper can prune one left behind when
    a container was removed without its volumes.
    """
    size = config.workspace_size_mb
    volume_labels = {labels.RUN_ID: run_id}
    if size is None:
        return Mount(WORKSPACE, None, type="volume", labels=volume_labels)
    options = f"size={size}m,uid={config.uid},gid={config.gid},mode=0755,nosuid,nodev"
    return Mount(
        WORKSPACE,
        None,
        type="volume",
        labels=volume_labels,
        driver_config=DriverConfig("local", {"type": "tmpfs", "device": "tmpfs", "o": options}),
    )
