"""The agent loop: ask the model, run the tools it calls, and repeat until it calls
the tool that ends its role's pass (``finish`` for the builder) or a limit stops it.

It is the one loop of every role (:mod:`jobs.agent.roles`): planner, builder, debugger
and reviewers differ only in their tools, their prompt and the tool that ends them.
Everything the loop depends on is passed in: the sandbox, the model, the configuration,
and a recorder that writes events and cost to the run. It raises a typed
:class:`~process.exceptions.AgentError` for every way it can stop short, after telling the
recorder why.

When the role's model is overloaded (529), keeps failing after its retries, or refuses,
the role's fallback model (:class:`~process.settings.ModelRoles`) takes over for the
rest of the pass, and a ``model_fallback`` event says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from jobs.agent.config import AgentConfig
from jobs.agent.edit_checks import EditCheck, EditChecks
from jobs.agent.history import ConversationHistory
from jobs.agent.limits import CallRecord, Clock, ProgressTracker, StepSpend
from jobs.agent.model import Block, Model, ModelResponse, RetryNotice
from jobs.agent.prompt import Task, build_request, first_message, load_conventions
from jobs.agent.roles import agent_role, role_prompt
from jobs.agent.tool_specs import Finish, ToolOutcome
from jobs.agent.tools import Toolbox
from jobs.agent.turn_events import (
    fallback_event,
    finished_event,
    retry_event,
    todos_event,
    turn_event,
)
from jobs.agent.workspace import WorkspaceFiles
from process.exceptions import (
    AgentError,
    CapReached,
    DollarLimit,
    Interrupted,
    ModelOverloaded,
    ModelRefused,
    ModelUnavailable,
    PromptTooLong,
    TurnLimit,
)
from process.settings import Role
from runs.artifacts import Cost
from runs.events import Event
from sandboxes.protocol import Sandbox

NUDGE_NO_TOOLS = (
    "You ended your turn without calling a tool. If the change is complete and the "
    "checks pass, call `finish`; otherwise carry on with the tools."
)
NUDGE_CUT_OFF = (
    "Your reply was cut off by the output limit. Carry on, in smaller steps "
    "(several edit_file calls rather than one large write_file)."
)
CUT_OFF_CALL = (
    "This call was cut off by the output limit (max_tokens) and was not run. "
    "Send it again, smaller: split a large write_file into several edit_file calls."
)
FINISH_REFUSED = (
    "Not finished: another call in this turn failed (see its result). "
    "Deal with that, then call finish again."
)


class RunRecorder(Protocol):
    """Where the loop reports to. :class:`~jobs.agent.recorders.StoreRecorder` writes
    to the run store; :class:`~jobs.agent.recorders.MemoryRecorder` keeps a list."""

    def on_event(self, event: Event) -> None: ...

    def on_cost(self, cost: Cost, model: str = "") -> None: ...

    def on_stop(self, reason: str, message: str) -> None: ...


@dataclass(frozen=True)
class AgentResult:
    """What a finished agent pass hands to the blueprint. ``turns`` and ``cost`` are
    the budget's totals: the whole iteration's, when passes share one budget.
    ``output`` is the input of the role's ending tool (the plan, the root cause, the
    verdict); ``model`` the model that finished the pass (the fallback, if it took
    over); ``on_edit_*`` what the on_edit checks of this pass cost."""

    summary: str
    notes_for_reviewer: str
    turns: int
    cost: Cost
    output: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    on_edit_seconds: float = 0.0
    on_edit_runs: int = 0


@dataclass(frozen=True)
class Checkpoint:
    """Where a pass stood at a turn boundary: its conversation (the system prompt as
    sent, and every message so far) and what its budget had spent. The workspace at
    that moment is the sandbox's patch, saved next to it by the caller."""

    system: str
    messages: list[dict[str, Any]]
    turns: int
    cost: Cost
    #: The turn of the pass's last trim (:class:`ConversationHistory`), so a resumed
    #: pass trims when the uninterrupted one would have.
    trimmed_at: int | None = None
    #: The model the pass was on (its fallback, if that had taken over).
    model: str | None = None


def run_agent(
    task: Task,
    *,
    sandbox: Sandbox,
    model: Model,
    recorder: RunRecorder,
    config: AgentConfig | None = None,
    role: Role = "builder",
    budget: StepSpend | None = None,
    clock: Clock = time.monotonic,
    should_stop: Callable[[], bool] | None = None,
    resume: Checkpoint | None = None,
    ask_at_cap: bool = False,
    on_edit: Sequence[EditCheck] = (),
    name: str | None = None,
) -> AgentResult:
    """Run the agent as ``role`` on ``task`` in ``sandbox`` until it calls the role's
    ending tool.

    Pass ``budget`` to share limits across passes; otherwise a fresh budget starts
    now. Raises :class:`~process.exceptions.LimitsExceeded` (or another
    :class:`~process.exceptions.AgentError`) after ``recorder.on_stop``.

    ``should_stop`` is asked after every turn (the model answered and its tools ran);
    when it says yes the loop raises :class:`Interrupted` before the next model call.
    With ``ask_at_cap``, reaching the dollar or turn cap raises :class:`CapReached`
    (an :class:`Interrupted`) instead of a limit error, so the caller can ask for more.
    ``resume`` continues such a pass: same system prompt, messages and model, so the
    next request is the one the stopped pass would have sent, and its turns and cost
    count against the budget (the sandbox must hold the pass's change so far).
    ``on_edit`` checks run after each edit or write (the builder's); ``name`` labels
    the pass's events (``agent:<name>``, e.g. a specialist reviewer's).
    """
    config = config or AgentConfig()
    spec = agent_role(role)
    by = f"agent:{name or role}"
    try:
        model_id = config.roles.for_role(role)
        fallback = config.roles.fallback_for(role)
        for priced in (model_id, fallback):  # no price, no budget: refuse before spending
            if priced is not None:
                config.price_table.price_for(priced)
        budget = budget or StepSpend(config.limits, clock=clock)
        workspace = WorkspaceFiles(sandbox)
        checks = (
            EditChecks(sandbox, on_edit, remaining_seconds=budget.remaining_seconds)
            if on_edit
            else None
        )
        toolbox = Toolbox(
            workspace,
            output_chars=config.tool_output_chars,
            command_timeout=config.command_timeout,
            max_command_timeout=config.max_command_timeout,
            remaining_seconds=budget.remaining_seconds,
            tools=spec.tools,
            edit_checks=checks,
        )
        progress = ProgressTracker(config.limits.no_progress_turns)
        tools = toolbox.specs
        system: str
        messages: list[dict[str, Any]]
        if resume is None:
            conventions = load_conventions(workspace, config.conventions_chars)
            system = role_prompt(spec, task, conventions)
            messages = [first_message(task, spec.opening)]
        else:
            system, messages = resume.system, [dict(m) for m in resume.messages]
            model_id = resume.model or model_id
            budget.turns = max(budget.turns, resume.turns)
            if resume.cost.dollars > budget.cost.dollars:
                budget.cost = resume.cost

        history = ConversationHistory(messages, recorder.on_event, by, progress, config.keep_turns)
        history.trimmed_at = resume.trimmed_at if resume is not None else None

        def checkpoint() -> Checkpoint:
            return Checkpoint(
                system, messages, budget.turns, budget.cost, history.trimmed_at, model_id
            )

        def may_fall_back() -> bool:
            return fallback is not None and model_id != fallback

        def fall_back(cause: str) -> str:
            assert fallback is not None
            recorder.on_event(fallback_event(role, model_id, fallback, cause, by))
            return fallback

        def on_retry(notice: RetryNotice) -> None:
            if notice.status == 529 and may_fall_back():
                # Overloaded, and another model is at hand: no point waiting.
                raise ModelOverloaded(
                    f"{model_id} is overloaded ({notice.error})",
                    attempts=notice.attempt,
                    status=529,
                )
            recorder.on_event(retry_event(notice, by))
            budget.check_wait(notice.wait_seconds)  # never sleep past the deadline

        while True:
            try:
                budget.before_call()
            except (TurnLimit, DollarLimit) as cap:
                if not ask_at_cap:
                    raise
                raise CapReached(checkpoint(), cap) from None
            request = build_request(
                model=model_id,
                max_tokens=config.max_output_tokens,
                system=system,
                tools=tools,
                messages=messages,
            )
            try:
                response = model.complete(request, on_retry=on_retry)
            except PromptTooLong as err:
                history.make_room(str(err), budget.turns)
                continue
            except ModelUnavailable as err:
                if not may_fall_back():
                    raise
                model_id = fall_back(
                    "overloaded" if isinstance(err, ModelOverloaded) else "unavailable"
                )
                continue
            cost = config.price_table.cost(model_id, response.usage)
            budget.charge(cost)
            recorder.on_cost(cost, model_id)
            if response.stop_reason == "refusal":
                recorder.on_event(turn_event(response, [], cost, budget, by))
                if not may_fall_back():
                    raise ModelRefused(f"the model declined the request: {response.text[:300]!r}")
                model_id = fall_back("refused")
                continue
            if response.stop_reason == "model_context_window_exceeded":
                # The answer was cut off by the window; ask again with less history.
                recorder.on_event(turn_event(response, [], cost, budget, by))
                history.make_room("the context window filled up", budget.turns)
                continue
            messages.append({"role": "assistant", "content": response.content or [_text("…")]})
            turn = _run_tools(response, toolbox, budget, spec.done)
            recorder.on_event(turn_event(response, turn.records, cost, budget, by))
            if turn.todos is not None:
                recorder.on_event(todos_event(turn.todos, by))
            finish = turn.finish
            if finish is not None:
                recorder.on_event(finished_event(finish, budget, by))
                return AgentResult(
                    finish.summary,
                    finish.notes_for_reviewer,
                    budget.turns,
                    budget.cost,
                    output=finish.output,
                    model=model_id,
                    on_edit_seconds=checks.seconds if checks else 0.0,
                    on_edit_runs=checks.runs if checks else 0,
                )
            results = turn.results
            if not results:
                cut = response.stop_reason == "max_tokens"
                results = [_text(NUDGE_CUT_OFF if cut else nudge(spec.done))]
            messages.append({"role": "user", "content": results})
            progress.record_turn(turn.records)
            if response.usage.prompt_tokens > config.context_tokens:
                history.trim(budget.turns)
            if should_stop is not None and should_stop():
                raise Interrupted(checkpoint())
    except AgentError as err:
        recorder.on_stop(err.reason, str(err))
        raise


def nudge(done: str) -> str:
    """What the model is told after a turn without a tool call."""
    if done == "finish":
        return NUDGE_NO_TOOLS
    return f"You ended your turn without calling a tool. When you are done, call `{done}`."


@dataclass(frozen=True)
class _Turn:
    """The tool results of one turn, in the calls' order, and what they added up to."""

    results: list[Block]
    records: list[CallRecord]
    finish: Finish | None
    todos: tuple[tuple[str, bool], ...] | None


def _run_tools(response: ModelResponse, toolbox: Toolbox, budget: StepSpend, done: str) -> _Turn:
    """Run the response's tool calls in order; the ending tool (``done``) last, and
    only if the rest of the turn succeeded."""
    calls = response.tool_calls
    cut_off = (
        response.stop_reason == "max_tokens" and bool(calls) and calls[-1] is response.content[-1]
    )
    outcomes: dict[int, ToolOutcome] = {}
    for index, call in enumerate(calls):
        if call["name"] == done:
            continue
        if cut_off and index == len(calls) - 1:
            outcomes[index] = ToolOutcome(CUT_OFF_CALL, is_error=True)
            continue
        budget.check_clock()
        outcomes[index] = toolbox.call(call["name"], call.get("input"))
    finish: Finish | None = None
    failed = any(outcome.is_error for outcome in outcomes.values())
    for index, call in enumerate(calls):
        if call["name"] != done:
            continue
        if cut_off and index == len(calls) - 1:
            outcomes[index] = ToolOutcome(CUT_OFF_CALL, is_error=True)
        elif failed:
            outcomes[index] = ToolOutcome(FINISH_REFUSED, is_error=True)
        elif finish is not None:
            outcomes[index] = ToolOutcome(f"{done} was already called in this turn", is_error=True)
        else:
            outcomes[index] = toolbox.call(done, call.get("input"))
            finish = outcomes[index].finish
    results: list[Block] = []
    records: list[CallRecord] = []
    todos: tuple[tuple[str, bool], ...] | None = None
    for index, call in enumerate(calls):
        outcome = outcomes[index]
        block: Block = {
            "type": "tool_result",
            "tool_use_id": call["id"],
            "content": outcome.content,
        }
        if outcome.is_error:
            block["is_error"] = True
        results.append(block)
        records.append(
            CallRecord(call["name"], call.get("input"), outcome.content, outcome.is_error)
        )
        if outcome.todos is not None:
            todos = outcome.todos
    return _Turn(results, records, finish, todos)


def _text(text: str) -> Block:
    return {"type": "text", "text": text}
