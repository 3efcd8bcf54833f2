"""One job's hold on one run: reading it, saving checkpoints, and knowing when to let go.

Every write goes through :meth:`RunContext.save`, which first checks that the run is
still running *and still ours* (same attempt): a run that was cancelled, failed, or
handed to another worker by crash recovery makes the next save raise
:class:`Superseded`, and this job stops without touching anything else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from jobs import drain
from jobs.agent.config import AgentConfig
from jobs.agent.limits import StepSpend
from jobs.agent.model import Model
from jobs.blueprint.deps import Deps
from jobs.repo_config import RepoConfig
from process.exceptions import Draining, StepFailed, Superseded
from process.settings import AgentLimits
from runs.events import Event
from runs.record import Run, RunStatus
from runs.store import RunStore

log = logging.getLogger(__name__)


class RunContext:
    """What the steps share during one job: deps, the run id, the model, the budget."""

    def __init__(self, deps: Deps, run_id: int, *, attempt: int, by: str, model: Model) -> None:
        self.deps = deps
        self.run_id = run_id
        self.attempt = attempt
        self.by = by
        self.model = model
        self._budget: StepSpend | None = None
        #: Whether this job stops at its checkpoints when its worker drains (a job run
        #: by a worker with a queue to hand the run back to; see :mod:`jobs.drain`).
        self.drainable = False

    @property
    def store(self) -> RunStore:
        return self.deps.store

    def _check(self, run: Run) -> None:
        if run.status is not RunStatus.RUNNING or run.attempts != self.attempt:
            raise Superseded(
                f"run #{run.id} is {run.status.value} (attempt {run.attempts}); "
                f"this job was attempt {self.attempt}"
            )

    def run(self) -> Run:
        """The run as stored now; raises :class:`Superseded` if it is not ours any more."""
        run = self.deps.store.get(self.run_id)
        self._check(run)
        return run

    def save(self, change: Callable[[Run], None], events: Sequence[Event] = ()) -> Run:
        """A checkpoint: ``change`` and ``events`` in one atomic write, if still ours."""

        def guarded(run: Run) -> None:
            self._check(run)
            change(run)

        run: Run = self.deps.store.update(self.run_id, guarded, events=list(events))
        return run

    def draining(self) -> bool:
        """True once this job's worker asked it to stop at its next checkpoint."""
        return self.drainable and drain.requested()

    def stop_if_draining(self, where: str | None = None) -> None:
        """A checkpoint where nothing is left to save: raise :class:`~process.exceptions.Draining`
        (resume at the current step) if the worker is shutting down."""
        if self.draining():
            step = self.run().step
            assert step is not None
            raise Draining(step, where)

    def record(self, *events: Event) -> None:
        """Append ``events`` to the run's log, if the run is still this job's."""
        self.save(lambda run: None, events)

    def repo_config(self) -> RepoConfig:
        raw = self.run().artifacts.config
        if raw is None:
            raise StepFailed("the repository's configuration was not read (prepare did not run)")
        return RepoConfig.model_validate(raw)

    def base_limits(self) -> AgentLimits:
        """The worker's limits with the repository's applied, before any extension.

        A repository may only tighten the operator's budget, never raise it: its
        ``.agents.yml`` is written by whoever can commit, not by whoever pays.
        """
        base = self.deps.agent.limits
        limits = self.repo_config().limits
        changes: dict[str, Any] = {}
        if limits.max_turns is not None:
            changes["max_turns"] = min(limits.max_turns, base.max_turns)
        if limits.max_dollars is not None:
            changes["max_dollars"] = min(limits.max_dollars, base.max_dollars)
        return base.model_copy(update=changes)

    def agent_config(self) -> AgentConfig:
        """The worker's agent configuration with the repository's limits applied, and
        what Extend added to them in this iteration (dollars never past the operator's
        hard cap, ``max_dollars_hard``)."""
        base = self.deps.agent
        limits = self.base_limits()
        a = self.run().artifacts
        extended = limits.model_copy(
            update={
                "max_turns": limits.max_turns + a.extra_turns,
                "max_dollars": min(limits.max_dollars + a.extra_dollars, limits.max_dollars_hard),
            }
        )
        config = base.model_copy(update={"limits": extended})
        command_timeout = self.repo_config().limits.command_timeout
        if command_timeout is not None:
            timeout = float(command_timeout)
            config = config.model_copy(
                update={
                    "command_timeout": min(config.command_timeout, timeout),
                    "max_command_timeout": min(config.max_command_timeout, timeout),
                }
            )
        return config

    @property
    def budget(self) -> StepSpend:
        """One budget for every agent pass of the iteration (planner, builder, fix
        rounds, debugger, reviewers): it starts from what the iteration's earlier jobs
        spent (``artifacts.spent``, ``turns_spent``), so a resumed run does not start
        its budget over."""
        if self._budget is None:
            run = self.run()
            budget = StepSpend(self.agent_config().limits)
            budget.turns = run.artifacts.turns_spent
            budget.cost = run.artifacts.spent
            self._budget = budget
        return self._budget
