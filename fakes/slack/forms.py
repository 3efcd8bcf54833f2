"""Modal inputs as a Slack client handles them, before anything reaches the bot.

A person fills a modal's input blocks; the client builds ``view.state.values`` from
what was typed and refuses to submit while a required field is empty or a length limit
is broken. Keeping that here, apart from delivery, lets a test see exactly which
submissions Slack's client itself would stop (:class:`ViewInputError`) and which reach
the bot.
"""

from __future__ import annotations

from typing import Any

from fakes.slack.objects import View

Json = dict[str, Any]

REQUIRED_FIELD = "Please complete this required field."


class ViewInputError(ValueError):
    """A modal submission Slack's client would refuse (a required field left empty, ...)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(f"the modal shows errors: {errors}")
        self.errors = errors


def find_element(blocks: list[Json], action_id: str, block_id: str | None) -> tuple[Json, Json]:
    for block in blocks:
        if block_id is not None and block.get("block_id") != block_id:
            continue
        candidates: list[Any] = []
        if block.get("type") == "actions":
            candidates = list(block.get("elements") or [])
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                candidates.append(block[key])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block, element
    raise LookupError(f"no element with action_id {action_id!r} in the message")


def input_blocks(view: View) -> list[Json]:
    return [
        b
        for b in view.definition.get("blocks", [])
        if isinstance(b, dict) and b.get("type") == "input"
    ]


TEXT_INPUTS = ("plain_text_input", "email_text_input", "url_text_input", "number_input")


def view_state(view: View, values: dict[str, Any]) -> tuple[Json, dict[str, str]]:
    """``state.values`` for a submission, and the errors Slack's client would show."""
    state: Json = {}
    errors: dict[str, str] = {}
    used: set[str] = set()
    for block in input_blocks(view):
        block_id = str(block.get("block_id"))
        element = block.get("element") or {}
        action_id = str(element.get("action_id"))
        kind = str(element.get("type"))
        given: Any = None
        if isinstance(values.get(block_id), dict):
            given = values[block_id].get(action_id)
            used.add(block_id)
        elif block_id in values:
            given = values[block_id]
            used.add(block_id)
        elif action_id in values:
            given = values[action_id]
            used.add(action_id)
        elif kind in TEXT_INPUTS:
            given = element.get("initial_value")
        if kind in TEXT_INPUTS:
            value = None if given in (None, "") else str(given)
            entry: Json = {"type": kind, "value": value}
            if value is None and not block.get("optional"):
                errors[block_id] = REQUIRED_FIELD
            elif value is not None:
                if len(value) < int(element.get("min_length", 0)):
                    errors[block_id] = f"Must be at least {element['min_length']} characters."
                elif len(value) > int(element.get("max_length", 3000)):
                    errors[block_id] = f"Must be at most {element['max_length']} characters."
        elif isinstance(given, dict):
            entry = {"type": kind, **given}
        else:
            entry = {"type": kind}
            if given is None and not block.get("optional"):
                errors[block_id] = REQUIRED_FIELD
        state[block_id] = {action_id: entry}
    unknown = set(values) - used
    if unknown:
        raise ValueError(f"no input in view {view.id} for {sorted(unknown)}")
    return state, errors
