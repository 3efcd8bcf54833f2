"""The typed parts of what a run's steps leave behind (:class:`runs.record.Artifacts`).

Each part is kept on the run record as JSON, and records written before these models
existed stored the same keys as plain dicts: field names here are those keys, and a
field a part did not always carry has a default, so an old record loads unchanged
(``tests/runs/test_artifacts.py``). A step writes a part by building its model, so a
misspelt key is a type error, not a key nobody reads.

The models live here, below ``jobs/``, because the run record holds them; the code
that makes and judges them (``jobs/checks.py``, ``jobs/blueprint/``) imports them.
Where a part's content is truly open (what a model wrote, the repository's own
configuration), the field says so and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Cost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    dollars: float = 0.0

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )


# -- checks ----------------------------------------------------------------------------


class TestFailure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    test_id: str
    message: str
    preexisting: bool = False


class CheckResult(BaseModel):
    """One check command's outcome (``jobs/checks.py`` judges and parses it)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    command: str
    exit_code: int
    timed_out: bool = False
    duration: float = 0.0
    source: str = "exit_code"  # or "junit"
    tests: int | None = None
    failures: list[TestFailure] = Field(default_factory=list)
    output_tail: str = ""
    #: Why the check executed no test at all (no test collected, every module failed to
    #: import, ...); such a check never passes, whatever its exit code.
    not_run: str | None = None

    @property
    def passed(self) -> bool:
        if self.timed_out or self.not_run:
            return False
        if self.source == "junit":
            return not self.failures and self.exit_code == 0
        return self.exit_code == 0

    @property
    def new_failures(self) -> list[TestFailure]:
        return [f for f in self.failures if not f.preexisting]

    @property
    def only_preexisting(self) -> bool:
        """Failed, but every failing test also fails on the base commit."""
        return (
            not self.passed and not self.not_run and bool(self.failures) and not self.new_failures
        )


class CheckReport(BaseModel):
    """One run of the repository's checks (``artifacts.check_reports``, oldest first)."""

    model_config = ConfigDict(extra="forbid")

    iteration: int
    #: ``checks`` for the checks step; another step's name when it ran them.
    phase: str
    #: Fix rounds spent before this run of the checks.
    round: int
    passed: bool
    summary: str
    results: list[CheckResult] = Field(default_factory=list)
    #: What failed (:func:`jobs.blueprint.debugger.fingerprint`); None when they passed.
    fingerprint: str | None = None
    #: The fix round that followed this report: what the builder said it changed.
    fix_summary: str | None = None


# -- the plan and the builder's todo list ---------------------------------------------


class Spec(BaseModel):
    """One version of a run's plan (``artifacts.plans``); :mod:`jobs.blueprint.spec`
    renders and judges it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    problem: str
    constraints: list[str] = Field(default_factory=list)
    approach: str
    acceptance_criteria: list[str]
    risks: list[str] = Field(default_factory=list)
    tasks: list[str]
    #: How much plan feedback there was when this version was written: a newer piece
    #: of feedback asks for the next version.
    feedback_seen: int = 0
    #: The planner's model.
    model: str = ""


class TodoItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    done: bool = False


# -- reviews -----------------------------------------------------------------------------


class ReviewOutcome(BaseModel):
    """The general reviewer's last review (``artifacts.review``).

    ``criteria`` and ``findings`` are the review tool's items as the model gave them
    (``jobs/agent/tool_specs.py`` validates their shape at the tool call): data every
    renderer treats as untrusted text, read key by key with defaults, so they stay
    open here rather than failing a run record on a model's odd item.
    """

    model_config = ConfigDict(extra="forbid")

    verdict: str
    notes: str = ""
    round: int = 1
    model: str = ""
    criteria: list[dict[str, Any]] = Field(default_factory=list)
    findings: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def blocks(self) -> bool:
        return self.verdict == "block"


class SpecialistOutcome(BaseModel):
    """One specialist reviewer's review of a round (``artifacts.specialists[name]``);
    its findings are open for the reason :class:`ReviewOutcome` gives."""

    model_config = ConfigDict(extra="forbid")

    verdict: str
    notes: str = ""
    findings: list[dict[str, Any]] = Field(default_factory=list)
    #: Those of ``findings`` at or above the blocking severity.
    blocking_findings: list[dict[str, Any]] = Field(default_factory=list)
    round: int = 1
    model: str = ""

    @property
    def milder_findings(self) -> list[dict[str, Any]]:
        """The findings that did not block publishing (they become review comments)."""
        return [f for f in self.findings if f not in self.blocking_findings]


# -- a stopped agent pass ------------------------------------------------------------------


class AgentResume(BaseModel):
    """A pass stopped at a turn boundary (a draining worker, or the budget's cap), kept
    so the next job continues it (``artifacts.agent_resume``): the step and the pass it
    belongs to, its conversation and what its budget had spent.

    ``messages`` is the conversation as the Messages API takes it (text, tool use and
    tool result blocks of every kind the SDK knows): open by nature, sent back as is.
    """

    model_config = ConfigDict(
        extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    #: The step's value (:class:`runs.record.Step`).
    step: str
    #: The pass's name: a role, or a specialist's name. Stored as ``pass``.
    pass_name: str = Field("builder", alias="pass")
    system: str
    messages: list[dict[str, Any]]
    turns: int
    cost: Cost
    trimmed_at: int | None = None
    model: str | None = None


# -- CI ------------------------------------------------------------------------------------


class CiCheckSeen(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    state: str


class CiFailing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    summary: str | None = None
    url: str | None = None


#: Where a CI fix round stands (:attr:`CiRecord.fix`).
CiFix = Literal["started", "checked", "checks_failed", "pushed", "done"]


class CiRecord(BaseModel):
    """How CI ended on the pushed head (``artifacts.ci``), and where a CI fix round
    stands: ``fix`` goes ``started`` → ``checked`` (or ``checks_failed``) → ``pushed``
    → ``done``, each saved, so a resumed job picks it up where it stopped."""

    model_config = ConfigDict(extra="forbid")

    #: ``success``, ``failure``, ``none``, ``timed_out``, ``skipped`` or ``unconfigured``.
    state: str
    sha: str
    polls: int = 0
    waited: float = 0.0
    checks: list[CiCheckSeen] = Field(default_factory=list)
    failing: list[CiFailing] = Field(default_factory=list)
    fix: CiFix | None = None
    #: The head the fix round started from.
    fix_base: str | None = None
    #: The local checks' summary after the fix round.
    fix_checks: str | None = None
    #: CI on the fix round's push.
    after_fix: CiRecord | None = None

    def at_fix(self, fix: CiFix) -> CiRecord:
        """A copy of this record with its fix round at ``fix``."""
        moved = self.model_copy(deep=True)
        moved.fix = fix
        return moved


# -- reproducibility -----------------------------------------------------------------------


class ManifestEnvironment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    image_id: str
    commit: str


class Manifest(BaseModel):
    """What a run needs to be reproduced (``artifacts.manifest``), shown in the PR."""

    model_config = ConfigDict(extra="forbid")

    agents_version: str
    repo: str
    base_branch: str
    base_commit: str
    start_commit: str
    iteration: int
    sandbox: str
    image: str
    image_id: str | None = None
    #: Model ids by role (``builder``, ``reviewer``).
    models: dict[str, str] = Field(default_factory=dict)
    #: The system prompt's hash by role or pass name, as each pass finished.
    prompt_sha256: dict[str, str] = Field(default_factory=dict)
    setup: list[str] = Field(default_factory=list)
    environment: ManifestEnvironment | None = None
    checks: list[str] = Field(default_factory=list)
    checks_detected: bool = False


# -- questions and guards ----------------------------------------------------------------


class BudgetAsk(BaseModel):
    """The open budget question (``artifacts.budget_ask``), as the thread asked it."""

    model_config = ConfigDict(extra="forbid")

    #: When it was asked, as ISO text: also the question's identity, which the
    #: buttons carry and an answer must match (compared as text, so kept as text).
    at: str
    limit_kind: Literal["dollars", "turns"]
    can_extend: bool
    spent: float = 0.0
    limit: float = 0.0
    #: What Extend adds: dollars, or turns.
    extend_by: float = 0.0
    hard_cap: float = 0.0
    text: str = ""
    #: The step's value it was asked in.
    step: str | None = None


#: How long an approve's guard holds off a rework (above the approve job's timeout).
APPROVING_SECONDS = 900


class ApproveGuard(BaseModel):
    """Held while an approve job acts on the forge (``artifacts.approving``): a rework
    may not land between the approve's checks and its forge call. It lapses after
    :data:`APPROVING_SECONDS`, so an approve job that died blocks nothing."""

    model_config = ConfigDict(extra="forbid")

    by: str
    iteration: int
    #: When it was taken, as ISO text (unreadable text counts as lapsed).
    at: str

    def holds(self, iteration: int, now: datetime) -> bool:
        """True while it guards ``iteration`` and has not lapsed at ``now``."""
        if self.iteration != iteration:
            return False
        try:
            since = datetime.fromisoformat(self.at)
        except ValueError:
            return False
        return (now - since).total_seconds() < APPROVING_SECONDS


# -- where setup went through the egress proxy -------------------------------------


class EgressReport(BaseModel):
    """Where setup's network traffic went, read from the egress proxy's log.

    Hosts are kept sorted and bounded (:data:`MAX_EGRESS_HOSTS` each); ``truncated``
    says some were left out, or that more log was written than was read.
    """

    model_config = ConfigDict(extra="forbid")

    #: Hosts the proxy connected to (the server answered, whatever it said).
    reached: list[str] = Field(default_factory=list)
    #: Hosts the proxy refused: not on the allow-list, or an address it never reaches.
    denied: list[str] = Field(default_factory=list)
    #: Allowed hosts the proxy could not reach (no such name, no answer).
    failed: list[str] = Field(default_factory=list)
    requests: int = 0
    truncated: bool = False

    def merged(self, other: EgressReport) -> EgressReport:
        """Both reports in one, as bounded as each."""

        def union(a: list[str], b: list[str]) -> list[str]:
            return sorted(set(a) | set(b))[:MAX_EGRESS_HOSTS]

        cut = any(
            len(set(a) | set(b)) > MAX_EGRESS_HOSTS
            for a, b in (
                (self.reached, other.reached),
                (self.denied, other.denied),
                (self.failed, other.failed),
            )
        )
        return EgressReport(
            reached=union(self.reached, other.reached),
            denied=union(self.denied, other.denied),
            failed=union(self.failed, other.failed),
            requests=self.requests + other.requests,
            truncated=self.truncated or other.truncated or cut,
        )

    def summary(self) -> str:
        """One line for the thread, e.g. ``setup reached 2 hosts; denied example.com``."""
        count = len(self.reached)
        parts = [f"setup reached {count} host{'' if count == 1 else 's'}"]
        for verb, hosts in (("denied", self.denied), ("could not reach", self.failed)):
            if hosts:
                shown = ", ".join(hosts[:5])
                more = len(hosts) - 5
                parts.append(f"{verb} {shown}" + (f" and {more} more" if more > 0 else ""))
        return "; ".join(parts)


#: Most hosts an :class:`EgressReport` keeps in each list.
MAX_EGRESS_HOSTS = 50
