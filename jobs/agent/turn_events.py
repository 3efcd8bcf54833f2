"""The events one pass of the agent loop writes to its run: each turn, each retry, a
fallback to another model, the todo list, and the pass's end."""

from __future__ import annotations

from collections.abc import Sequence

from jobs.agent.limits import CallRecord, StepSpend
from jobs.agent.model import ModelResponse, RetryNotice
from jobs.agent.tool_specs import Finish, describe_call
from runs.artifacts import Cost, TodoItem
from runs.events import (
    AgentFinished,
    AgentTurn,
    ModelFellBack,
    ModelRetried,
    TodosUpdated,
    ToolCallSummary,
)

_CAUSES = {
    "overloaded": "was overloaded (HTTP 529)",
    "unavailable": "kept failing after its retries",
    "refused": "refused the request",
}


def turn_event(
    response: ModelResponse,
    calls: Sequence[CallRecord],
    cost: Cost,
    budget: StepSpend,
    by: str,
) -> AgentTurn:
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


def retry_event(notice: RetryNotice, by: str) -> ModelRetried:
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


def fallback_event(role: str, model: str, fallback: str, cause: str, by: str) -> ModelFellBack:
    return ModelFellBack(
        by=by,
        role=role,
        model=model,
        fallback=fallback,
        cause=cause,
        text=f"the {role}'s model {model} {_CAUSES.get(cause, cause)}; {fallback} takes over",
    )


def todos_event(items: Sequence[tuple[str, bool]], by: str) -> TodosUpdated:
    done = sum(1 for _, finished in items if finished)
    return TodosUpdated(
        by=by,
        items=[TodoItem(text=text, done=finished) for text, finished in items],
        text=f"todo list: {done} of {len(items)} done",
    )


def finished_event(finish: Finish, budget: StepSpend, by: str) -> AgentFinished:
    return AgentFinished(
        by=by,
        summary=finish.summary,
        notes_for_reviewer=finish.notes_for_reviewer,
        turns=budget.turns,
        total_tokens=budget.cost.total_tokens,
        total_dollars=budget.cost.dollars,
    )
