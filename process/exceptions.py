"""Every exception this project raises for flow control, in one flat module (as rq does).

Each layer raises its own, but they all live here, so a caller finds what a function
may raise in one place and ``except`` clauses never reach into another package's
internals. The bottom layer (``process``) imports nothing of the others, so the few
exceptions that carry a run's step or an agent's checkpoint keep them as plain values.
"""

from __future__ import annotations

from typing import Any, ClassVar

# -- every part ---------------------------------------------------------------------


class AgentsError(Exception):
    """Base class for errors raised by this project."""


class SettingsError(AgentsError):
    """A setting is missing or malformed; ``str(err)`` is one line naming it."""

    def __init__(self, variable: str, expected: str) -> None:
        self.variable = variable
        self.expected = expected
        super().__init__(f"{variable}: {expected}")


class RunNotFound(AgentsError):
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        super().__init__(f"run #{run_id} does not exist (or its retention period has passed)")


class ThreadAlreadyHasRun(AgentsError):
    """A Slack thread maps to at most one run; a second create for it is refused."""

    def __init__(self, channel: str, thread_ts: str, run_id: int) -> None:
        self.run_id = run_id
        super().__init__(f"thread {channel}/{thread_ts} already belongs to run #{run_id}")


class InvalidRepoName(AgentsError):
    """A repository name that breaks GitHub's rules (:mod:`process.repo_names`); no run
    is created for it."""

    def __init__(self, repo: str, problem: str) -> None:
        self.repo = repo
        super().__init__(f"{repo[:100]!r} is not a repository name: {problem}")


class InvalidTransition(AgentsError):
    """The transition is not in the table, or another actor changed the run first."""

    def __init__(self, run_id: int, current: str, target: str) -> None:
        self.run_id = run_id
        self.current = current
        self.target = target
        super().__init__(f"run #{run_id}: cannot go from {current} to {target}")


# -- the brain: the agent loop, the blueprint and the forge -----------------------------


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
    """Transient failures (429, 529, 5xx, connection) outlasted the retry budget.
    ``status`` is the last HTTP status (None for a connection failure)."""

    reason = "model_unavailable"

    def __init__(self, message: str, *, attempts: int, status: int | None = None) -> None:
        self.attempts = attempts
        self.status = status
        super().__init__(message)


class ModelOverloaded(ModelUnavailable):
    """The model answered 529 (overloaded) and a fallback model is configured: the
    loop switches to it at once instead of waiting through the retries."""

    reason = "model_overloaded"


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


class StepFailed(AgentsError):
    """A step ended the run. The message is the run's reason, shown in its thread."""


class RepoConfigError(AgentsError):
    """``.agents.yml`` is malformed; the message is meant for the user, as is."""


class Superseded(Exception):
    """The run is no longer this job's: cancelled, finished, or taken over."""


class Draining(Exception):
    """The worker is shutting down: stop at this checkpoint and hand the run back, to
    resume at ``step`` (``where`` says where inside it, for a mid-step checkpoint)."""

    def __init__(self, step: str, where: str | None = None) -> None:
        at = f"{step} ({where})" if where else step
        super().__init__(f"its worker is shutting down; resuming at {at} on another worker")
        self.step = step
        self.where = where


class Interrupted(Exception):
    """The agent loop's ``should_stop`` said stop: raised between two turns, with the
    pass's checkpoint (a :class:`jobs.agent.loop.Checkpoint`), so that ``run_agent``
    with ``resume`` continues it."""

    def __init__(self, checkpoint: Any) -> None:
        super().__init__(f"stopped on request after turn {checkpoint.turns}")
        self.checkpoint = checkpoint


class CapReached(Interrupted):
    """The loop reached its dollar or turn cap with ``ask_at_cap`` set: raised before
    the next model call, with the pass's checkpoint, so the run can pause and ask
    whether to extend its budget. ``error`` is the limit that was reached."""

    def __init__(self, checkpoint: Any, error: LimitsExceeded) -> None:
        super().__init__(checkpoint)
        self.error = error


class Paused(Exception):
    """The run now waits for a person at a checkpoint (its plan's approval, or an
    answer about its budget) and holds no worker: this job ends here."""


class SandboxLost(Exception):
    """The step's sandbox vanished under it: the Docker engine restarted, or the
    container was removed or outlived its lifetime."""

    def __init__(self, step: str, err: Exception) -> None:
        super().__init__(f"the sandbox went away during {step} ({err})")
        self.step = step


# -- the hands: sandboxes, images and the repository cache ------------------------------


class SandboxError(AgentsError):
    """Something went wrong with one run's sandbox."""

    def __init__(self, run_id: str, message: str) -> None:
        self.run_id = run_id
        self.message = message
        super().__init__(f"sandbox for run {run_id}: {message}")


class SandboxStartFailed(SandboxError):
    """The sandbox could not be created: no engine, no image, or the engine refused."""


class EgressUnavailable(SandboxStartFailed):
    """A setup needs network, but the egress proxy is missing, broken or unreachable."""


class CommandTimeout(SandboxError):
    """The client stopped waiting for a command whose in-sandbox timeout did not end it.

    A command that the sandbox killed on time is not an error: its
    :class:`~sandboxes.protocol.ExecResult` has ``timed_out`` set instead.
    """


class SandboxGone(SandboxError):
    """The sandbox no longer exists: closed, reaped, expired or removed by someone else."""


class ImageBuildFailed(AgentsError):
    """Building the base or the sandbox image failed; the message says which step."""


class RepoCacheError(AgentsError):
    """A repository mirror could not be created, refreshed or read."""


class EnvironmentBuildFailed(StepFailed):
    """An environment could not be built: a setup command or the repository's
    Dockerfile failed. The message names what failed and shows the first and last
    lines of its output; nothing was cached."""


class TaskDropped(AgentsError):
    """An evaluation task that cannot be measured (``agents eval``): a malformed line,
    a commit that no longer applies, tests that do not fail at the base commit. The
    task is left out of the report with this reason, and counted."""


class EvalInputError(AgentsError):
    """``agents eval`` or ``agents stats`` was given something it cannot use at all (an
    unreadable tasks file, a repository without qualifying commits, a bad ``--compare``)."""
