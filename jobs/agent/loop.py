"""The agent loop: ask the model, run the tools it calls, and repeat until it calls
``finish`` or a limit stops it.

Everything the loop depends on is passed in: the sandbox, the model, the configuration,
and a recorder that writes events and cost to the run. It raises a typed
:class:`~process.exceptions.AgentError` for every way it can stop short, after telling the
recorder why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from jobs.agent.config import AgentConfig
from jobs.agent.history import Trimmed, trim_history
from jobs.agent.limits import CallRecord, Clock, ProgressTracker, StepSpend
from jobs.agent.model import Block, Model, ModelResponse, RetryNotice
from jobs.agent.prompt import Task, build_request, first_message, load_conventions, system_prompt
from jobs.agent.tool_specs import Finish, ToolOutcome, describe_call
from jobs.agent.tools import Toolbox
from jobs.agent.workspace import WorkspaceFiles
from process.exceptions import (
    AgentError,
    ContextWindowFull,
    Interrupted,
    ModelRefused,
    PromptTooLong,
)
from process.settings import Role
from runs.events import (
    AgentFinished,
    AgentTurn,
    ContextTrimmed,
    Event,
    ModelRetried,
    ToolCallSummary,
)
from runs.record import Cost
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

    def on_cost(self, cost: Cost) -> None: ...

    def on_stop(self, reason: str, message: str) -> None: ...


@dataclass(frozen=True)
class AgentResult:
    """What a finished agent step hands to the blueprint. ``turns`` and ``cost`` are
    the budget's totals: the whole step's, when fix rounds share one budget."""

    summary: str
    notes_for_reviewer: str
    turns: int
    cost: Cost


@dataclass(frozen=True)
class Checkpoint:
    """Where a pass stood at a turn boundary: its conversation (the system prompt as
    sent, and every message so far) and what its budget had spent. The workspace at
    that moment is the sandbox's patch, saved next to it by the caller."""

    system: str
    messages: list[dict[str, Any]]
    turns: int
    cost: Cost
    #: The turn of the pass's last trim (:class:`_History`), so a resumed pass trims
    #: when the uninterrupted one would have.
    trimmed_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "messages": self.messages,
            "turns": self.turns,
            "cost": self.cost.model_dump(mode="json"),
            "trimmed_at": self.trimmed_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        trimmed_at = data.get("trimmed_at")
        return cls(
            system=str(data["system"]),
            messages=list(data["messages"]),
            turns=int(data["turns"]),
            cost=Cost.model_validate(data["cost"]),
            trimmed_at=None if trimmed_at is None else int(trimmed_at),
        )


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
) -> AgentResult:
    """Run the agent on ``task`` in ``sandbox`` until it calls ``finish``.

    Pass ``budget`` to share limits across fix rounds of one step; otherwise a fresh
    budget starts now. Raises :class:`~process.exceptions.LimitsExceeded` (or another
    :class:`~process.exceptions.AgentError`) after ``recorder.on_stop``.

    ``should_stop`` is asked after every turn (the model answered and its tools ran);
    when it says yes the loop raises :class:`Interrupted` before the next model call.
    ``resume`` continues such a pass: same system prompt and messages, so the next
    request is the one the stopped pass would have sent, and its turns and cost count
    against the budget (the sandbox must hold the pass's change so far).
    """
    config = config or AgentConfig()
    by = f"agent:{role}"
    try:
        model_id = config.roles.for_role(role)
        config.price_table.price_for(model_id)  # no price, no budget: refuse before spending
        budget = budget or StepSpend(config.limits, clock=clock)
        workspace = WorkspaceFiles(sandbox)
        toolbox = Toolbox(
            workspace,
            output_chars=config.tool_output_chars,
            command_timeout=config.command_timeout,
            max_command_timeout=config.max_command_timeout,
            remaining_seconds=budget.remaining_seconds,
        )
        progress = ProgressTracker(config.limits.no_progress_turns)
        tools = toolbox.specs
        system: str
        messages: list[dict[str, Any]]
        if resume is None:
            system = system_prompt(task, load_conventions(workspace, config.conventions_chars))
            messages = [first_message(task)]
        else:
            system, messages = resume.system, [dict(m) for m in resume.messages]
            budget.turns = max(budget.turns, resume.turns)
            if resume.cost.dollars > budget.cost.dollars:
                budget.cost = resume.cost

        history = _History(messages, recorder, by, progress, config.keep_turns)
        history.trimmed_at = resume.trimmed_at if resume is not None else None

        def on_retry(notice: RetryNotice) -> None:
            recorder.on_event(_retry_event(notice, by))
            budget.check_wait(notice.wait_seconds)  # never sleep past the deadline

        while True:
            budget.before_call()
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
            cost = config.price_table.cost(model_id, response.usage)
            budget.charge(cost)
            recorder.on_cost(cost)
            _check_stop_reason(response)
            if response.stop_reason == "model_context_window_exceeded":
                # The answer was cut off by the window; ask again with less history.
                recorder.on_event(_turn_event(response, [], cost, budget, by))
                history.make_room("the context window filled up", budget.turns)
                continue
            messages.append({"role": "assistant", "content": response.content or [_text("…")]})
            results, calls, finish = _run_tools(response, toolbox, budget)
            recorder.on_event(_turn_event(response, calls, cost, budget, by))
            if finish is not None:
                recorder.on_event(_finished_event(finish, budget, by))
                return AgentResult(
                    finish.summary, finish.notes_for_reviewer, budget.turns, budget.cost
                )
            if not results:
                cut = response.stop_reason == "max_tokens"
                results = [_text(NUDGE_CUT_OFF if cut else NUDGE_NO_TOOLS)]
            messages.append({"role": "user", "content": results})
            progress.record_turn(calls)
            if response.usage.prompt_tokens > config.context_tokens:
                history.trim(budget.turns)
            if should_stop is not None and should_stop():
                raise Interrupted(
                    Checkpoint(system, messages, budget.turns, budget.cost, history.trimmed_at)
                )
    except AgentError as err:
        recorder.on_stop(err.reason, str(err))
        raise


def _check_stop_reason(response: ModelResponse) -> None:
    if response.stop_reason == "refusal":
        raise ModelRefused(f"the model declined the request: {response.text[:300]!r}")


class _History:
    """The pass's conversation, kept inside the context window (:mod:`jobs.agent.history`).

    A soft trim (the prompt passed ``context_tokens``) keeps the newest ``keep_turns``
    turns whole and happens at most once per ``keep_turns`` turns, so the prompt cache
    is rewritten from the cut only that often. A hard one (the API refused the prompt)
    keeps only the newest turn, and stops the pass if nothing is left to remove.
    """

    def __init__(
        self,
        messages: list[dict[str, Any]],
        recorder: RunRecorder,
        by: str,
        progress: ProgressTracker,
        keep_turns: int,
    ) -> None:
        self.messages = messages
        self.recorder = recorder
        self.by = by
        self.progress = progress
        self.keep_turns = keep_turns
        self.trimmed_at: int | None = None

    def trim(self, turn: int) -> None:
        if self.trimmed_at is None or turn - self.trimmed_at >= self.keep_turns:
            self._trim(self.keep_turns, turn)

    def make_room(self, why: str, turn: int) -> None:
        if not self._trim(1, turn).blocks:
            raise ContextWindowFull(
                f"the conversation no longer fits the model's context window ({why}), even "
                "with old tool output removed; split the request into smaller ones"
            )

    def _trim(self, keep_turns: int, turn: int) -> Trimmed:
        trimmed = trim_history(self.messages, keep_turns=keep_turns)
        if trimmed.blocks:
            self.trimmed_at = turn
            self.progress.forget()  # re-reading what was cut is progress, not a loop
            self.recorder.on_event(
                ContextTrimmed(
                    by=self.by,
                    blocks=trimmed.blocks,
                    chars=trimmed.chars,
                    text=f"removed {trimmed.blocks} old tool outputs and call arguments "
                    f"({trimmed.chars:,} characters) to stay within the context window",
                )
            )
        return trimmed


def _run_tools(
    response: ModelResponse, toolbox: Toolbox, budget: StepSpend
) -> tuple[list[Block], list[CallRecord], Finish | None]:
    """Run the response's tool calls in order; ``finish`` last, and only if the rest
    of the turn succeeded. Returns the tool_result blocks, in the calls' order."""
    calls = response.tool_calls
    cut_off = (
        response.stop_reason == "max_tokens" and bool(calls) and calls[-1] is response.content[-1]
    )
    outcomes: dict[int, ToolOutcome] = {}
    for index, call in enumerate(calls):
        if call["name"] == "finish":
            continue
        if cut_off and index == len(calls) - 1:
            outcomes[index] = ToolOutcome(CUT_OFF_CALL, is_error=True)
            continue
        budget.check_clock()
        outcomes[index] = toolbox.call(call["name"], call.get("input"))
    finish: Finish | None = None
    failed = any(outcome.is_error for outcome in outcomes.values())
    for index, call in enumerate(calls):
        if call["name"] != "finish":
            continue
        if cut_off and index == len(calls) - 1:
            outcomes[index] = ToolOutcome(CUT_OFF_CALL, is_error=True)
        elif failed:
            outcomes[index] = ToolOutcome(FINISH_REFUSED, is_error=True)
        elif finish is not None:
            outcomes[index] = ToolOutcome("finish was already called in this turn", is_error=True)
        else:
            outcomes[index] = toolbox.call("finish", call.get("input"))
            finish = outcomes[index].finish
    results: list[Block] = []
    records: list[CallRecord] = []
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
    return results, records, finish


def _text(text: str) -> Block:
    return {"type": "text", "text": text}


def _turn_event(
    response: ModelResponse,
    calls: list[CallRecord],
    cost: Cost,
    budget: StepSpend,
    by: str,
) -> Event:
    described = [
        ToolCallSummary(
            tool=call.name,
            args=describe_call(call.name, call.input),
            result_chars=len(call.result),
            is_error=call.is_error,
        )
        for call in calls
    ]
    summary = " · ".join(f"{c.tool} {c.args}".strip() for c in described)
    return AgentTurn(
        by=by,
        turn=budget.turns,
        stop_reason=response.stop_reason,
        calls=described,
        text=summary or "(no tool calls)",
        input_tokens=cost.input_tokens,
        output_tokens=cost.output_tokens,
        cache_read_tokens=cost.cache_read_tokens,
        cache_write_tokens=cost.cache_write_tokens,
        dollars=cost.dollars,
        total_tokens=budget.cost.total_tokens,
        total_dollars=budget.cost.dollars,
    )


def _retry_event(notice: RetryNotice, by: str) -> Event:
    return ModelRetried(
        by=by,
        attempt=notice.attempt,
        max_retries=notice.max_retries,
        wait_seconds=notice.wait_seconds,
        status=notice.status,
        error=notice.error,
        text=f"model API unavailable ({notice.error}); retry {notice.attempt} of "
        f"{notice.max_retries} in {notice.wait_seconds:.0f}s",
    )


def _finished_event(finish: Finish, budget: StepSpend, by: str) -> Event:
    return AgentFinished(
        by=by,
        summary=finish.summary,
        notes_for_reviewer=finish.notes_for_reviewer,
        turns=budget.turns,
        total_tokens=budget.cost.total_tokens,
        total_dollars=budget.cost.dollars,
    )
