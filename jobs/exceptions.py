"""Every error the brain raises, in one flat module.

Each error that stops an agent step carries a short machine ``reason`` (recorded on the
run and in its event log) and a one-line human message (shown in the thread).
"""

from __future__ import annotations

from typing import ClassVar

from core.exceptions import AgentsError


class AgentError(AgentsError):
    """The agent step stopped before the model called ``finish``."""

    reason: ClassVar[str] = "agent_error"


# -- limits: the circuit breakers of the agent loop -----------------------------------


class LimitsExceeded(AgentError):
    """A limit of the agent loop was reached; no further model call is made."""

    reason: ClassVar[str] = "limit"

    def __init__(
        self, message: str, *, used: float | None = None, limit: float | None = None
    ) -> None:
        self.used = used
        self.limit = limit
        super().__init__(message)


class TurnLimit(LimitsExceeded):
    reason = "max_turns"


class TokenLimit(LimitsExceeded):
    reason = "max_tokens"


class DollarLimit(LimitsExceeded):
    reason = "max_dollars"


class WallClockLimit(LimitsExceeded):
    reason = "wall_clock"


class NoProgress(LimitsExceeded):
    """Several turns in a row repeated earlier calls with the same results, or did nothing."""

    reason = "no_progress"


class ContextWindowFull(LimitsExceeded):
    """The conversation no longer fits the model's context window."""

    reason = "context_window"


# -- the model ------------------------------------------------------------------------


class ModelError(AgentError):
    """A model call failed for good."""

    reason = "model_error"


class ModelRejected(ModelError):
    """The API refused the request (400, 401, 403, 404, 413): retrying cannot help.

    ``setting`` names the configuration to fix, when one is to blame.
    """

    reason = "model_rejected"

    def __init__(self, message: str, *, status: int, setting: str | None) -> None:
        self.status = status
        self.setting = setting
        super().__init__(message)


class PromptTooLong(ModelRejected):
    """The API refused the request because its prompt does not fit the context window
    (400 "prompt is too long", or 413). The loop trims its history and tries again."""

    reason = "context_window"


class ModelUnavailable(ModelError):
    """Transient failures (429, 529, 5xx, connection) outlasted the retry budget."""

    reason = "model_unavailable"

    def __init__(self, message: str, *, attempts: int) -> None:
        self.attempts = attempts
        super().__init__(message)


class ModelRefused(AgentError):
    """The model declined the request (``stop_reason: refusal``)."""

    reason = "refused"


class TranscriptDiverged(ModelError):
    """A replayed run sent a request the recording does not have at that point."""

    reason = "transcript_diverged"


class TranscriptInvalid(AgentError):
    """A transcript file is not in the documented format."""

    reason = "transcript_invalid"


class UnknownModelPrice(AgentError):
    """A model has no entry in the price table, so a dollar budget cannot be enforced."""

    reason = "unknown_price"


# -- tools: raised inside a tool, returned to the model as an ``is_error`` result -------


class ToolError(AgentError):
    """A tool could not do what was asked; the message tells the model what to change."""

    reason = "tool_error"


class Unresolved(ToolError):
    """The sandbox could not say what a path is: its helper command failed or timed out
    (a busy or broken sandbox), which says nothing about the path itself."""


class PathOutsideWorkspace(ToolError):
    """A path is absolute, uses ``..``, or resolves (through symlinks) outside the workspace."""

    reason = "path_outside_workspace"


# -- the forge: git transport, pull requests, checks ------------------------------------


class ForgeError(AgentsError):
    """A forge step (publish, watch CI, approve) failed. Messages never carry a credential."""

    reason: ClassVar[str] = "forge_error"


class ForgeUnavailable(ForgeError):
    """Transient forge failures (5xx, 429, connection) outlasted the retry budget."""

    reason = "forge_unavailable"

    def __init__(self, message: str, *, attempts: int) -> None:
        self.attempts = attempts
        super().__init__(message)


class ForgeRejected(ForgeError):
    """The forge refused the request (401, 403, 404, 422, ...): retrying cannot help."""

    reason = "forge_rejected"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class MergeRejected(ForgeRejected):
    """The pull request cannot be merged (conflicts, head moved, branch protection)."""

    reason = "merge_rejected"


class GitFailed(ForgeError):
    """A git command failed; the message carries its (redacted, bounded) stderr."""

    reason = "git_failed"


class PushRejected(GitFailed):
    """The push was refused, e.g. the branch moved on the forge. We never force-push."""

    reason = "push_rejected"


class RefLocked(GitFailed):
    """The forge could not lock the branch for the push ("cannot lock ref"): another
    push to it was in flight, such as one from a worker killed mid-push. Worth a retry."""

    reason = "ref_locked"


class PatchDoesNotApply(ForgeError):
    """The agent's patch does not apply to the commit it is published on."""

    reason = "patch_does_not_apply"


class NothingToPublish(ForgeError):
    """The patch changes nothing, so there is no commit to push and no PR to open."""

    reason = "nothing_to_publish"
