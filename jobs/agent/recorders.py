"""Where the agent loop reports: the run store, or a list in memory."""

from __future__ import annotations

from dataclasses import dataclass, field

from jobs.agent.pricing import add_costs
from runs.artifacts import Cost
from runs.events import AgentStopped, Event, TodosUpdated
from runs.record import Run
from runs.store import RunStore


class StoreRecorder:
    """Writes the loop's events, cost and stop reason to one run in the store.

    The stop reason goes on the run (``run.error``) and into its log at once, so the
    thread can say why the agent stopped before the blueprint fails the run. A todo
    list goes on the run too (``artifacts.todos``), in the same write as its event:
    the status message draws it from there however long ago it was set. Cost is
    split by ``role`` (by default the one ``by`` names) and model.
    """

    def __init__(
        self, store: RunStore, run_id: int, *, by: str = "agent", role: str | None = None
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.by = by
        self.role = role or by.removeprefix("agent:")

    def on_event(self, event: Event) -> None:
        if isinstance(event, TodosUpdated):
            items = list(event.items)

            def todos(run: Run) -> None:
                run.artifacts.todos = items

            self.store.update(self.run_id, todos, events=[event])
            return
        self.store.append_event(self.run_id, event)

    def on_cost(self, cost: Cost, model: str = "") -> None:
        self.store.add_cost(self.run_id, cost, by=self.by, role=self.role, model=model or None)

    def on_stop(self, reason: str, message: str) -> None:
        def change(run: Run) -> None:
            run.error = message

        event = AgentStopped(by=self.by, reason=reason, text=message)
        self.store.update(self.run_id, change, events=[event])


@dataclass
class MemoryRecorder:
    """Keeps what the loop reports, for tests and for command-line runs."""

    events: list[Event] = field(default_factory=list)
    costs: list[Cost] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    stops: list[tuple[str, str]] = field(default_factory=list)

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def on_cost(self, cost: Cost, model: str = "") -> None:
        self.costs.append(cost)
        self.models.append(model)

    def on_stop(self, reason: str, message: str) -> None:
        self.stops.append((reason, message))

    @property
    def total(self) -> Cost:
        return add_costs(self.costs)
