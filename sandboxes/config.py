"""What a sandbox may use, as plain pydantic models the caller fills in.

The worker builds :class:`SandboxConfig` from its settings and applies a repository's
choices (image, network, limits) with :meth:`SandboxConfig.with_changes`. Nothing here
reads the environment: the sandbox must never pick up anything from the worker by
accident.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
)

from process import allowlist

DEFAULT_IMAGE = "agents-sandbox:latest"
WORKSPACE = "/workspace"
#: The sandbox user's home: a size-limited tmpfs that allows exec, filled at start
#: from :data:`HOME_SKELETON` when the image has one (the default images keep their
#: virtualenv and tool configuration there).
HOME = "/home/agent"
HOME_SKELETON = "/opt/agents/home"
#: The proxy's image and container, and the network it reaches the outside from.
PROXY_IMAGE = "agents-egress-proxy:latest"
PROXY_NAME = "agents-egress-proxy"
EGRESS_NETWORK = "agents-egress"
#: Where each sandbox's own internal network takes its small subnet from.
EGRESS_SUBNETS = "10.213.0.0/16"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: HOME of a sandbox started from an environment image: on the container's own layer,
#: so what setup caches there (pip, npm, go) is part of the environment.
ENV_HOME = "/home/agent"
#: Directories a Debian image leaves writable by anyone, covered with read-only tmpfs
#: in sandboxes whose root filesystem is writable (environments): nothing but the
#: workspace, the home directory, /tmp and what the image gives uid 1000 is writable.
SEALED_DIRS = ("/var/tmp", "/run/lock")  # noqa: S108 - inside the container
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

EnvName = Annotated[str, Field(pattern=_ENV_NAME.pattern)]


class SandboxConfig(BaseModel):
    """Limits and defaults for one run's sandbox. The defaults are the hardened ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = Field(DEFAULT_IMAGE, min_length=1, description="image to run")
    network: bool = Field(
        False,
        description="start on a network of its own whose only way out is the egress proxy "
        "(for setup); off unless the repository opts in",
    )
    allow: tuple[str, ...] = Field(
        (),
        description="hosts the egress proxy lets this sandbox reach (see process.allowlist); "
        "empty allows none",
    )
    memory_mb: PositiveInt = Field(
        4096, description="memory limit, including a RAM workspace; swap is not allowed"
    )
    cpus: PositiveFloat = Field(1.0, description="CPU limit in cores")
    pids: PositiveInt = Field(256, description="most processes and threads at once")
    tmp_size_mb: PositiveInt = Field(512, description="size of the /tmp tmpfs")
    home: str = Field(HOME, pattern=r"^/[A-Za-z0-9_./-]+$", description="the home directory")
    home_size_mb: PositiveInt = Field(
        2048,
        description="size of the home directory's tmpfs (virtualenv, package caches), "
        "which counts against memory_mb",
    )
    shm_size_mb: NonNegativeInt = Field(
        0,
        description="size of a private /dev/shm (POSIX shared memory, which multiprocessing "
        "and browsers need); 0, the default, means none, so nothing outside the workspace "
        "and /tmp is writable. A repository opts in with `limits: {shm: 64m}`",
    )
    workspace_size_mb: PositiveInt | None = Field(
        2048,
        description="size of the RAM (tmpfs) workspace volume, which counts against "
        "memory_mb; None for an unbounded disk volume",
    )
    command_timeout: PositiveFloat = Field(600.0, description="default per-command seconds")
    kill_grace: PositiveFloat = Field(
        3.0, description="seconds between SIGTERM and SIGKILL when a command times out"
    )
    max_lifetime: PositiveInt = Field(
        4 * 3600, description="seconds after which the container ends, even if the worker died"
    )
    user: str = Field("1000:1000", description="numeric uid:gid commands run as; never root")
    max_output_bytes: PositiveInt = Field(
        64_000, description="per stream: exec keeps this many bytes, half head, half tail"
    )
    max_patch_bytes: PositiveInt = Field(
        64 * 1024 * 1024, description="export_patch fails rather than return a bigger patch"
    )
    store: str = Field(
        "",
        description="the run store the run lives in (a label); a reaper asks only its own "
        "store whether a run is final",
    )
    env: dict[EnvName, str] = Field(
        default_factory=dict, description="extra variables for every command; never secrets"
    )
    workspace_in_image: bool = Field(
        False,
        description="the workspace and home directory are part of the image (an "
        "environment, see sandboxes/env_images.py): they live on the container's own "
        "layer, so the root filesystem is writable where the image lets the sandbox user "
        "write (the workspace, the home directory, caches the image made), the other "
        "world-writable directories are sealed, and HOME is ENV_HOME",
    )

    @field_validator("allow")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return allowlist.parse_hosts(value)

    @field_validator("user")
    @classmethod
    def _non_root_numeric(cls, value: str) -> str:
        match = re.fullmatch(r"(\d+):(\d+)", value)
        if match is None:
            raise ValueError("user must be numeric uid:gid, e.g. 1000:1000")
        if int(match.group(1)) == 0 or int(match.group(2)) == 0:
            raise ValueError("user must not be root (uid 0 or gid 0)")
        return value

    @property
    def uid(self) -> int:
        return int(self.user.split(":")[0])

    @property
    def gid(self) -> int:
        return int(self.user.split(":")[1])

    def with_changes(self, **changes: object) -> SandboxConfig:
        """A validated copy with some fields changed, e.g. a repository's image or network."""
        return SandboxConfig.model_validate({**self.model_dump(), **changes})


class EgressConfig(BaseModel):
    """The engine's egress proxy, which a sandbox with ``network`` reaches the outside by."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    proxy: str = Field(PROXY_NAME, min_length=1, description="the proxy container's name")
    image: str = Field(PROXY_IMAGE, min_length=1, description="image the proxy is created from")
    network: str = Field(
        EGRESS_NETWORK, min_length=1, description="the network the proxy reaches out from"
    )
    subnets: str = Field(
        EGRESS_SUBNETS, description="range each sandbox's internal network takes a /28 from"
    )
    deny: tuple[str, ...] = Field(
        (), description="addresses or ranges the proxy never connects to, beyond the built-in"
    )

    @field_validator("subnets")
    @classmethod
    def _pool(cls, value: str) -> str:
        pool = ipaddress.ip_network(value, strict=True)
        if pool.version != 4 or pool.prefixlen > 28:
            raise ValueError("expected an IPv4 range of /28 or larger, e.g. 10.213.0.0/16")
        return str(pool)

    @field_validator("deny")
    @classmethod
    def _ranges(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(ipaddress.ip_network(item.strip(), strict=False)) for item in value)
