"""``/agents`` (the name is configurable): status, one run's detail, cancel, help.

Every reply is ephemeral; an unknown subcommand gets the help text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rq import Queue
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.blocks import escape, run_detail_blocks, status_blocks, text_message
from bot.requests import may_decide
from bot.services import Services
from jobs.status import collect
from process.exceptions import InvalidTransition, RunNotFound
from runs.projection import project
from runs.record import Run, approval_in_progress

#: Every subcommand ``/agents`` knows; anything else gets the help text. Tests try each
#: one as an unauthorized user, so a new one can't skip the authorization checks.
SUBCOMMANDS = ("status", "cancel", "help")


def help_text(command: str) -> str:
    return (
        f"`{command} status`: the queue, what is running and what it costs\n"
        f"`{command} status <id>`: one run in detail, with its latest events\n"
        f"`{command} cancel <id>`: stop a run (yours, or any if you are an approver)\n"
        f"`{command} help`: this text\n"
        "To start a run, mention me: `@agents in owner/repo: what to change`."
    )


def _run_id(word: str) -> int | None:
    """``42`` or ``#42``; None for anything else. ASCII digits only: ``str.isdigit``
    also takes ``²`` and other digits ``int`` refuses, and a run id has at most 12."""
    word = word.lstrip("#")
    return int(word) if word.isascii() and word.isdigit() and len(word) <= 12 else None


def handle_command(
    user: str,
    text: str,
    services: Services,
    visible: Callable[[Run], bool] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """The ephemeral reply to ``/agents <text>`` from ``user``.

    ``visible`` says which runs ``user`` may see in detail (see
    :meth:`Services.visibility`); None shows all.
    """
    command = services.settings.slash_command
    words = text.split()
    verb = words[0].lower() if words else "help"
    if verb == "status" and len(words) == 1:
        queue = Queue(services.settings.queue, connection=services.connection)
        return status_blocks(collect(services.store, queue), visible)
    if verb in ("status", "cancel") and len(words) == 2:
        run_id = _run_id(words[1])
        if run_id is None:
            return text_message(
                f"`{escape(words[1][:40])}` is not a run id; try `{command} {verb} 42`."
            )
        try:
            run = services.store.get(run_id)
        except RunNotFound:
            return text_message(f"There is no run #{run_id} (or its record has expired).")
        if verb == "status" and visible is not None and not visible(run):
            return text_message(
                f"{run.label} was asked in a private channel or DM you're not in, so I "
                "won't show it. Ask its requester, or an approver, to look it up."
            )
        if verb == "status":
            view = project(run, services.store.tail_events(run.id, 50))
            return run_detail_blocks(view, services.store.tail_events(run.id, 10))
        if not may_decide(user, run.requester, services.settings):
            return text_message(
                f"Only <@{run.requester}> or an approver can cancel {run.label}. "
                "Nothing was changed."
            )
        try:
            services.queue.cancel(run.id, by=user)
        except InvalidTransition:
            current = services.store.get(run.id)
            if approval_in_progress(current):
                return text_message(f"{run.label} is being approved; it can't be cancelled now.")
            return text_message(
                f"{run.label} is already {current.status.value}; nothing to cancel."
            )
        return text_message(f"Cancelled {run.label}.")
    if verb == "help":
        return text_message(help_text(command))
    return text_message(f"I don't know `{escape(text.strip()[:50])}`.\n" + help_text(command))


def register(app: App, services: Services) -> None:
    @app.command(services.settings.slash_command)
    def on_command(ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        user = command["user_id"]
        visible = services.visibility(client, user)
        fallback, blocks = handle_command(user, command.get("text", ""), services, visible)
        respond(text=fallback, blocks=blocks, response_type="ephemeral")
