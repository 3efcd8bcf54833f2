"""The run record: one per request, the source of truth for what the fleet is doing."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from process.exceptions import InvalidTransition
from process.settings import AgentLimits
from runs.artifacts import (
    AgentResume,
    ApproveGuard,
    BudgetAsk,
    CheckReport,
    CiRecord,
    Cost,
    EgressReport,
    Manifest,
    ReviewOutcome,
    Spec,
    SpecialistOutcome,
    TodoItem,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_DECISION = "awaiting_decision"
    #: Paused at a checkpoint until the requester approves the plan or asks to revise it.
    AWAITING_PLAN = "awaiting_plan"
    #: Paused at a checkpoint at the dollar or turn cap until someone extends or stops it.
    AWAITING_BUDGET = "awaiting_budget"
    APPROVED = "approved"
    REWORK = "rework"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: An evaluation task's run (``agents eval``) that went through its steps: it never
    #: publishes, so nobody decides on it; its result is graded outside the run.
    EVALUATED = "evaluated"
    #: Its pull request was merged on the forge (by anyone: GitHub's button, a merge queue).
    MERGED = "merged"
    #: Its pull request was closed on the forge without merging.
    CLOSED = "closed"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        RunStatus.APPROVED,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
        RunStatus.EVALUATED,
        RunStatus.MERGED,
        RunStatus.CLOSED,
    }
)

_ABORT = frozenset({RunStatus.FAILED, RunStatus.CANCELLED})
#: Where the PR's fate on the forge takes a run that has one, whatever it was doing.
_PR_ENDED = frozenset({RunStatus.MERGED, RunStatus.CLOSED})

#: The one table every status change is checked against. ``running -> queued`` is how
#: crash recovery hands a run whose worker died back to the queue. A run paused for its
#: plan or its budget holds no worker: an answer queues it again, to resume where it
#: paused. ``merged`` and ``closed`` come from the forge (a webhook): from any state a
#: run with a PR can be in (a rework paused at its budget too; never one waiting for its
#: plan, which comes before any PR), and from ``approved``, the one way out of a final
#: state (an approve that marked the PR ready, then a merge on GitHub).
TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING}) | _ABORT | _PR_ENDED,
    RunStatus.RUNNING: frozenset(
        {
            RunStatus.AWAITING_DECISION,
            RunStatus.QUEUED,
            RunStatus.AWAITING_PLAN,
            RunStatus.AWAITING_BUDGET,
            RunStatus.EVALUATED,
        }
    )
    | _ABORT
    | _PR_ENDED,
    RunStatus.AWAITING_PLAN: frozenset({RunStatus.QUEUED}) | _ABORT,
    RunStatus.AWAITING_BUDGET: frozenset({RunStatus.QUEUED}) | _ABORT | _PR_ENDED,
    RunStatus.AWAITING_DECISION: frozenset({RunStatus.APPROVED, RunStatus.REWORK})
    | _ABORT
    | _PR_ENDED,
    RunStatus.REWORK: frozenset({RunStatus.RUNNING, RunStatus.QUEUED}) | _ABORT | _PR_ENDED,
    RunStatus.APPROVED: _PR_ENDED,
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
    RunStatus.EVALUATED: frozenset(),
    RunStatus.MERGED: frozenset(),
    RunStatus.CLOSED: frozenset(),
}


def check_transition(run_id: int, current: RunStatus, target: RunStatus) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> target`` is in the table."""
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(run_id, current.value, target.value)


class Step(StrEnum):
    """The blueprint's steps, in order."""

    PREPARE = "prepare"
    PLAN = "plan"
    AGENT = "agent"
    CHECKS = "checks"
    REVIEW = "review"
    PUBLISH = "publish"
    WATCH_CI = "watch_ci"
    AWAIT_DECISION = "await_decision"


class Feedback(BaseModel):
    """A message for a run's next iteration, and who wrote it: the agent is told both,
    so it never takes a bystander's words for the requester's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    by: str
    text: str
    at: datetime = Field(default_factory=utcnow)


class EnvironmentUse(BaseModel):
    """The environment a run's sandboxes start from (``jobs/environments``), for the
    thread: which one, and whether this run built it, reused it or waits for it."""

    model_config = ConfigDict(extra="forbid")

    #: The environment's key (hex) and its image's id.
    key: str
    image: str = ""
    #: ``building`` / ``waiting`` while the prepare step waits; then ``built`` (this run
    #: built it) or ``reused``.
    outcome: Literal["building", "waiting", "built", "reused"]
    #: The commit the environment's checkout holds.
    commit: str = ""
    #: When the environment was built, and how long its build took.
    built_at: datetime | None = None
    build_seconds: float | None = None
    #: While building or waiting: when that build started, how long the last one took.
    since: datetime | None = None
    expected_seconds: float | None = None
    #: Sandboxes of this run started from it, and how many came from the warm pool.
    sandboxes: int = 0
    from_pool: int = 0
    #: Times ``environment.update`` or setup ran in this run's sandboxes (the source
    #: moved, or the run changed a dependency input).
    updates: int = 0


class Artifacts(BaseModel):
    """What each step leaves behind. Steps fill these in as they complete."""

    model_config = ConfigDict(extra="forbid")

    base_commit: str | None = None
    patch: str | None = None
    summary: str | None = None
    check_reports: list[CheckReport] = Field(default_factory=list)
    review: ReviewOutcome | None = None
    branch: str | None = None
    pr_url: str | None = None
    pr_number: int | None = None
    completed_steps: list[Step] = Field(default_factory=list)
    # -- blueprint checkpoints (jobs/blueprint); per iteration unless noted --------------
    #: The iteration ``completed_steps`` and the other per-iteration fields belong to.
    steps_iteration: int = 1
    #: The branch the PR targets (per run).
    base_branch: str | None = None
    #: The commit this iteration's workspace starts from: the base commit, or the
    #: branch's pushed head for a rework. ``patch`` is the change against it.
    start_commit: str | None = None
    #: The branch head this run last pushed (per run).
    head_sha: str | None = None
    #: The repository's effective ``.agents.yml``: checks detected, defaults applied (per
    #: run). It is ``jobs.repo_config.RepoConfig`` as JSON, kept open here because that
    #: model is the parser of a hostile file and lives in ``jobs/``, above this package;
    #: ``RunContext.repo_config()`` validates it back into that model on every read.
    config: dict[str, Any] | None = None
    notes_for_reviewer: str | None = None
    #: Fix rounds spent on failing checks, and whether they ran out (published as draft).
    fix_rounds_spent: int = 0
    escalated: bool = False
    #: Reviewer calls made, and whether the extra round a blocking verdict buys was spent.
    review_rounds: int = 0
    review_fixed: bool = False
    #: Model calls answered so far in this iteration (a replayed run resumes after them).
    model_calls: int = 0
    #: A builder pass stopped at a turn boundary because its worker was draining: the
    #: step, its conversation and its budget so far, so the next job continues it.
    agent_resume: AgentResume | None = None
    #: How CI ended on the pushed head: state, sha, failing checks, fix round.
    ci: CiRecord | None = None
    #: Where the setups of this run reached through the egress proxy, and what it denied.
    egress: EgressReport | None = None
    #: Reproducibility: base commit, image id, model ids, prompt hashes, commands.
    manifest: Manifest | None = None
    #: The environment this iteration's sandboxes start from (per iteration).
    environment: EnvironmentUse | None = None
    #: The feedback this iteration addresses, and what earlier iterations did (per run).
    feedback: list[Feedback] = Field(default_factory=list)
    earlier_summaries: list[str] = Field(default_factory=list)
    # -- the factory's roles (jobs/blueprint/steps/plan.py, checks.py, review.py) --------
    #: The plan's versions, oldest first, and the version approved (per run: a rework
    #: builds against the same contract).
    plans: list[Spec] = Field(default_factory=list)
    plan_approved: int | None = None
    #: Feedback asking for the next version of the plan, with who wrote it (per run).
    plan_feedback: list[Feedback] = Field(default_factory=list)
    #: The builder's todo list, as it last set it.
    todos: list[TodoItem] = Field(default_factory=list)
    #: The debugger's last root-cause note, and the failures it has looked at (their
    #: fingerprints, the last one the note's), so it is called once per failure.
    root_cause: str | None = None
    debugged: list[str] = Field(default_factory=list)
    #: Specialist reviews of this round, by name: verdict, findings, model.
    specialists: dict[str, SpecialistOutcome] = Field(default_factory=dict)
    #: What this iteration's passes have spent, against the run's budget (every role).
    spent: Cost = Field(default_factory=Cost)
    turns_spent: int = 0
    #: Budget added by Extend in this iteration, and the open question, if any.
    extra_dollars: float = 0.0
    extra_turns: int = 0
    budget_ask: BudgetAsk | None = None
    #: Stop here was chosen: publish what exists as a draft (or nothing) and stop.
    budget_stopped: bool = False
    #: Seconds the on_edit checks added, and how many ran, in this iteration.
    on_edit_seconds: float = 0.0
    on_edit_runs: int = 0
    #: The specialists' milder findings went onto the PR as review comments.
    review_comments_posted: bool = False
    #: Set while an approve job acts on the forge (:class:`ApproveGuard`).
    approving: ApproveGuard | None = None

    @property
    def latest_plan(self) -> int:
        """The latest plan's version; 0 before the first plan."""
        return self.plans[-1].version if self.plans else 0


def approval_in_progress(run: Run, now: datetime | None = None) -> bool:
    """True while an approve job holds the run's guard for its current iteration."""
    guard = run.artifacts.approving
    return guard is not None and guard.holds(run.iteration, now or utcnow())


class Estimate(BaseModel):
    """What similar finished runs on the repository took, told when a run is asked:
    medians of their time to a pull request and of their cost (:mod:`runs.stats`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seconds: float
    dollars: float
    #: How many finished runs the medians are taken over.
    runs: int

    @property
    def text(self) -> str:
        minutes = max(1, round(self.seconds / 60))
        return f"usually ~{minutes} min, ~${self.dollars:.2f}"


class Run(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    requester: str
    repo: str
    request: str
    channel: str | None = None
    thread_ts: str | None = None
    #: The message that asked for the run (reactions go here) and the bot's status
    #: message in the thread (updated in place).
    message_ts: str | None = None
    status_ts: str | None = None
    #: Earlier messages of the thread the mention came in, as "name: text" lines.
    context: str | None = None
    #: The requester asked for a plan first (``@agents plan in owner/repo: ...``).
    plan_asked: bool = False
    #: Follow-ups that arrived while the run was working, for its next iteration.
    pending_feedback: list[Feedback] = Field(default_factory=list)
    #: The RQ queue its jobs go to (AGENTS_QUEUE of the bot that took it): only workers
    #: of that queue recover it. None for a run no queue serves (``agents run``), or
    #: one stored before runs recorded it.
    home_queue: str | None = None
    status: RunStatus = RunStatus.QUEUED
    status_by: str | None = None
    step: Step | None = None
    iteration: int = 1
    #: Jobs started on this iteration (each has its own RQ job id and heartbeat).
    attempts: int = 0
    #: Of those, how many ended by handing the run back on purpose, by cause (``drain``:
    #: the worker shut down; ``sandbox``: the sandbox vanished). They are not crashes:
    #: recovery's limit counts ``attempts`` minus these (:func:`jobs.attempts.crashes`).
    handbacks: dict[str, int] = Field(default_factory=dict)
    artifacts: Artifacts = Field(default_factory=Artifacts)
    cost: Cost = Field(default_factory=Cost)
    #: The same cost split by role and model: ``{"builder": {"claude-...": Cost}}``.
    cost_by_role: dict[str, dict[str, Cost]] = Field(default_factory=dict)
    #: The limits the run is measured against, as the worker had them when it started.
    budget: AgentLimits | None = None
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    #: An evaluation task (``agents eval``): the blueprint stops after the review, never
    #: pushes or opens a pull request, and the run ends ``evaluated``.
    evaluation: bool = False
    #: What similar runs on this repository took, when there were enough of them.
    estimate: Estimate | None = None

    def add_feedback(self, by: str, text: str) -> None:
        """Keep ``text`` from ``by`` for the run's next iteration."""
        self.pending_feedback.append(Feedback(by=by, text=text))

    @property
    def label(self) -> str:
        """The short human id, as users type it: ``#42``."""
        return f"#{self.id}"
