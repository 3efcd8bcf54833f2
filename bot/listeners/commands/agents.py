"""``/agents`` (the name is configurable): status, one run's detail, cancel, help.

Every reply is ephemeral; an unknown subcommand gets the help text.
"""

from __future__ import annotations

from typing import Any

from rq import Queue
from slack_bolt import Ack, App, Respond

from bot.blocks import escape, run_detail_blocks, status_blocks, text_message
from bot.requests import may_decide
from bot.services import Services
from core.exceptions import InvalidTransition, RunNotFound
from core.projection import project
from jobs.status import collect


def help_text(command: str) -> str:
    return (
        f"`{command} status`: the queue, what is running and what it costs\n"
        f"`{command} status <id>`: one run in detail, with its latest events\n"
        f"`{command} cancel <id>`: stop a run (yours, or any if you are an approver)\n"
        f"`{command} help`: this text\n"
        "To start a run, mention me: `@agents in owner/repo: what to change`."
    )


def _run_id(word: str) -> int | None:
    word = word.lstrip("#")
    return int(word) if word.isdigit() else None


def handle_command(user: str, text: str, services: Services) -> tuple[str, list[dict[str, Any]]]:
    """The ephemeral reply to ``/agents <text>`` from ``user``."""
    command = services.settings.command
    words = text.split()
    verb = words[0].lower() if words else "help"
    if verb == "status" and len(words) == 1:
        queue = Queue(services.settings.queue, connection=services.connection)
        return status_blocks(collect(services.store, queue))
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
            current = services.store.get(run.id).status.value
            return text_message(f"{run.label} is already {current}; nothing to cancel.")
        return text_message(f"Cancelled {run.label}.")
    if verb == "help":
        return text_message(help_text(command))
    return text_message(f"I don't know `{escape(text.strip()[:50])}`.\n" + help_text(command))


def register(app: App, services: Services) -> None:
    @app.command(services.settings.command)
    def on_command(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        ack()
        fallback, blocks = handle_command(command["user_id"], command.get("text", ""), services)
        respond(text=fallback, blocks=blocks, response_type="ephemeral")
