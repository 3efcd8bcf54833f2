"""Typed events appended to a run's log. The Slack thread is a projection of these.

One class per kind, each with the fields it carries, joined in :data:`Event`, a union
discriminated by ``kind``: a writer cannot misspell a field, and a reader (the
reporter, the projection, the CLI, the benchmarks) matches on the class. Every event
says who caused it (``by``) and when; ``line`` is its one line for logs and for
``/agents status <id>``.

The log is append-only in Redis (a stream per run); :data:`EVENT` turns an entry back
into its class, so the log round-trips through these types.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from runs.artifacts import TodoItem
from runs.record import RunStatus, Step, utcnow


class EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    by: str
    at: datetime = Field(default_factory=utcnow)
    #: The Redis stream entry id, set when read back from the log.
    id: str | None = None

    @property
    def line(self) -> str:
        text = getattr(self, "text", None)
        return str(text) if text else str(getattr(self, "kind", ""))


# -- the record's own changes (written by the store) ---------------------------------


class RunCreated(EventBase):
    kind: Literal["created"] = "created"
    repo: str
    request: str

    @property
    def line(self) -> str:
        return f"{self.repo}: {self.request}"


class StatusChanged(EventBase):
    kind: Literal["status"] = "status"
    previous: RunStatus
    to: RunStatus
    reason: str | None = None

    @property
    def line(self) -> str:
        detail = f"{self.previous.value} -> {self.to.value}"
        return f"{detail}: {self.reason}" if self.reason else detail


class StepStarted(EventBase):
    kind: Literal["step"] = "step"
    step: Step

    @property
    def line(self) -> str:
        return self.step.value


# -- the agent loop -----------------------------------------------------------------


class ToolCallSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str
    args: str
    result_chars: int
    is_error: bool


class AgentTurn(EventBase):
    """One model call and the tools it asked for."""

    kind: Literal["turn"] = "turn"
    turn: int
    #: The calls, as one line (``read_file a.py · run pytest -q``).
    text: str
    stop_reason: str | None = None
    calls: list[ToolCallSummary] = Field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    dollars: float = 0.0
    total_tokens: int = 0
    total_dollars: float = 0.0


class ContextTrimmed(EventBase):
    kind: Literal["context_trimmed"] = "context_trimmed"
    blocks: int
    chars: int
    text: str


class ModelRetried(EventBase):
    kind: Literal["model_retry"] = "model_retry"
    attempt: int
    max_retries: int
    wait_seconds: float
    status: int | None
    error: str
    text: str


class AgentFinished(EventBase):
    kind: Literal["agent_finished"] = "agent_finished"
    summary: str
    notes_for_reviewer: str | None
    turns: int
    total_tokens: int
    total_dollars: float

    @property
    def line(self) -> str:
        return self.summary


class AgentStopped(EventBase):
    """A circuit breaker or an error ended the agent step before it finished."""

    kind: Literal["agent_stopped"] = "agent_stopped"
    reason: str
    text: str


class ModelFellBack(EventBase):
    """A role's model was overloaded, kept failing or refused: its fallback took over
    for the rest of the pass."""

    kind: Literal["model_fallback"] = "model_fallback"
    role: str
    model: str
    fallback: str
    #: ``overloaded`` (529), ``unavailable`` (5xx after the retries) or ``refused``.
    cause: str
    text: str


class TodosUpdated(EventBase):
    """The builder's todo list, as it set it with its ``todo`` tool."""

    kind: Literal["todos"] = "todos"
    items: list[TodoItem]
    text: str


# -- the blueprint's steps ----------------------------------------------------------


class Prepared(EventBase):
    kind: Literal["prepared"] = "prepared"
    text: str
    base_commit: str
    checks: list[str]


class EnvironmentNoted(EventBase):
    """What the run's sandboxes start from (docs/environments.md): an environment being
    built or waited for, built or reused (``key``, ``built``), or setup run again in
    this run's sandbox because the change touched a dependency input."""

    kind: Literal["environment"] = "environment"
    text: str
    key: str | None = None
    built: bool | None = None


class ChecksRan(EventBase):
    """One run of the checks. When a fix round follows, it is ``fix_round`` of
    ``last_round``."""

    kind: Literal["checks"] = "checks"
    passed: bool
    text: str
    fix_round: int | None = None
    last_round: int | None = None


class Escalated(EventBase):
    kind: Literal["escalated"] = "escalated"
    text: str


class SetupEgress(EventBase):
    """Where setup reached through the egress proxy, and what the proxy denied:
    ``setup reached 2 hosts; denied example.com``."""

    kind: Literal["egress"] = "egress"
    text: str
    reached: list[str] = Field(default_factory=list)
    denied: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)


class Reviewed(EventBase):
    kind: Literal["review"] = "review"
    verdict: str
    text: str


class SafetyGateBlocked(EventBase):
    kind: Literal["safety_gate"] = "safety_gate"
    text: str
    findings: list[str]


class PullRequestOpened(EventBase):
    kind: Literal["pr_opened"] = "pr_opened"
    url: str
    number: int
    branch: str
    head_sha: str
    draft: bool

    @property
    def line(self) -> str:
        return f"pull request opened: {self.url}"


class PullRequestUpdated(EventBase):
    kind: Literal["pr_updated"] = "pr_updated"
    url: str
    number: int
    branch: str
    head_sha: str
    draft: bool
    text: str


class CiFinished(EventBase):
    kind: Literal["ci"] = "ci"
    state: str
    text: str


class PlanProposed(EventBase):
    """The planner wrote version ``version`` of the spec (kept in ``artifacts.plans``);
    the run waits for Approve plan or Revise plan."""

    kind: Literal["plan"] = "plan"
    version: int
    text: str


class RootCauseFound(EventBase):
    """The debugger's note on a failure the fix rounds kept repeating; the builder
    gets it in its next fix round."""

    kind: Literal["root_cause"] = "root_cause"
    note: str
    text: str


class SpecialistReviewed(EventBase):
    """A specialist reviewer (security, migrations, ...) the diff called for."""

    kind: Literal["specialist_review"] = "specialist_review"
    specialist: str
    verdict: str
    findings: int
    blocking: int
    text: str


class BudgetAsked(EventBase):
    """The run reached its dollar or turn cap and paused: extend it, or stop here."""

    kind: Literal["budget_ask"] = "budget_ask"
    #: ``dollars`` or ``turns``.
    limit_kind: str
    spent: float
    limit: float
    extend_by: float
    #: False at the operator's hard cap: only Stop here is offered.
    can_extend: bool
    text: str


# -- decisions ----------------------------------------------------------------------


class DecisionRefused(EventBase):
    """An approve the worker could not carry out. ``mentions`` are the Slack user ids
    the bot itself wrote as ``<@id>`` in ``text``: the reporter keeps those live and
    escapes the rest."""

    kind: Literal["decision_refused"] = "decision_refused"
    action: str
    text: str
    mentions: list[str] = Field(default_factory=list)


class PlanDecided(EventBase):
    """Approve plan or Revise plan, by ``by``; ``feedback`` is what a revision asks."""

    kind: Literal["plan_decision"] = "plan_decision"
    action: Literal["approve", "revise"]
    version: int
    feedback: str | None = None
    text: str


class BudgetDecided(EventBase):
    """Extend or Stop here on a paused run; ``timeout`` when nobody answered in time."""

    kind: Literal["budget_decision"] = "budget_decision"
    action: Literal["extend", "stop", "timeout"]
    text: str


class ApproveFailed(EventBase):
    kind: Literal["approve_failed"] = "approve_failed"
    text: str


class SandboxesRemoved(EventBase):
    kind: Literal["sandboxes_removed"] = "sandboxes_removed"
    count: int
    text: str


class GitHubActivity(EventBase):
    """Something said or done to the run on GitHub (a webhook), mirrored into its thread:
    a comment or review asking for a rework, a comment kept for the next iteration, the
    PR merged or closed, or an event recorded and ignored (who, and why not)."""

    kind: Literal["github"] = "github"
    login: str
    action: Literal["started", "rework", "steer", "merged", "closed", "ignored"]
    text: str
    url: str | None = None


Event = Annotated[
    RunCreated
    | StatusChanged
    | StepStarted
    | AgentTurn
    | ContextTrimmed
    | ModelRetried
    | ModelFellBack
    | TodosUpdated
    | AgentFinished
    | AgentStopped
    | Prepared
    | EnvironmentNoted
    | ChecksRan
    | Escalated
    | SetupEgress
    | Reviewed
    | PlanProposed
    | RootCauseFound
    | SpecialistReviewed
    | BudgetAsked
    | SafetyGateBlocked
    | PullRequestOpened
    | PullRequestUpdated
    | CiFinished
    | DecisionRefused
    | PlanDecided
    | BudgetDecided
    | ApproveFailed
    | SandboxesRemoved
    | GitHubActivity,
    Field(discriminator="kind"),
]

#: Reads an event back from its JSON, into its class.
EVENT: TypeAdapter[Event] = TypeAdapter(Event)

#: Events the log keeps at DEBUG level: one per model call, many per run.
CHATTY = (AgentTurn,)
