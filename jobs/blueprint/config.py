"""What the blueprint takes from the worker's settings, as one frozen model.

The steps never read the environment: :func:`jobs.config.blueprint_config` fills this in
from :class:`~process.settings.WorkerSettings`, and tests build it directly.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from jobs.safety import DEFAULT_PROTECTED
from sandboxes.config import SandboxConfig


class BlueprintConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Defaults for what ``.agents.yml`` may override.
    fix_rounds: int = Field(2, ge=0, le=10)
    escalation: Literal["draft", "stop"] = "draft"
    protected_paths: tuple[str, ...] = DEFAULT_PROTECTED
    #: The sandbox every run starts from (image, hardened limits); the repository's
    #: config changes image, network and limits on top of it.
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    sandbox_backend: str = "docker"
    #: Pull requests and decisions.
    draft: bool = True
    approve_action: Literal["ready", "merge"] = "ready"
    merge_method: Literal["merge", "squash", "rebase"] = "squash"
    approvers: tuple[str, ...] = ()
    require_github_write: bool = False
    #: Slack user id -> GitHub login, for Co-authored-by and the write-access check.
    user_map: dict[str, str] = Field(default_factory=dict)
    slack_url: str = "https://slack.com"
    #: CI on the pull request. ``ci_timeout`` 0 skips watching.
    ci_timeout: float = Field(1800.0, ge=0)
    ci_poll: float = Field(15.0, gt=0)
    ci_settle: float = Field(60.0, ge=0)
    ci_fix: bool = False
    #: Crash recovery: starts per iteration before a run is failed, and heartbeat age.
    max_attempts: int = Field(3, ge=1)
    heartbeat_seconds: int = Field(30, ge=1)
    #: Sizes of what the agent and the reviewer are shown.
    failure_slice_chars: int = 8000
    review_diff_chars: int = 60_000
    #: How long check results on a base commit are kept (they never change).
    base_checks_ttl: int = 7 * 86400
