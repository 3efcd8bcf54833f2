"""``/agents`` (the name is configurable): status, one run's detail, stats, cancel, the
channel's default repository, help.

Every reply is ephemeral; an unknown subcommand gets the help text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rq import Queue
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.blocks import escape, run_detail_blocks, status_blocks, text_message
from bot.requests import may_ask, repo_allowed
from bot.services import Services
from bot.stats_blocks import stats_blocks
from jobs import decisions
from jobs.status import collect
from process.exceptions import RunNotFound
from process.repo_names import is_repo_name
from runs.outcomes import OutcomeStore
from runs.projection import project
from runs.record import Run, utcnow
from runs.stats import parse_window, stats_report

#: Every subcommand ``/agents`` knows; anything else gets the help text. Tests try each
#: one as an unauthorized user, so a new one can't skip the authorization checks.
SUBCOMMANDS = ("status", "stats", "cancel", "repo", "help")
DEFAULT_WINDOW = "30d"


REPO_WORD = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def help_text(command: str) -> str:
    return (
        f"`{command} status`: the queue, what is running and what it costs\n"
        f"`{command} status <id>`: one run in detail, with its latest events\n"
        f"`{command} stats [owner/repo] [30d]`: runs, merged PRs, cost per merged PR and "
        "line survival, per repository, over a window (hours, days or weeks)\n"
        f"`{command} cancel <id>`: stop a run (yours, or any if you are an approver)\n"
        f"`{command} repo [owner/name|clear]`: show or set this channel's default repository\n"
        f"`{command} help`: this text\n"
        "To start a run, mention me: `@agents in owner/repo: what to change`."
    )


def _run_id(word: str) -> int | None:
    """``42`` or ``#42``; None for anything else. ASCII digits only: ``str.isdigit``
    also takes ``²`` and other digits ``int`` refuses, and a run id has at most 12."""
    word = word.lstrip("#")
    return int(word) if word.isascii() and word.isdigit() and len(word) <= 12 else None


def stats_reply(
    words: list[str],
    services: Services,
    where: Callable[[str, str | None], bool] | None,
    command: str,
) -> tuple[str, list[dict[str, Any]]]:
    """``stats [owner/repo] [window]``: figures over runs ``where`` lets the user see."""
    window, repo = DEFAULT_WINDOW, None
    for word in words:
        if REPO_WORD.match(word):
            repo = word
            continue
        try:
            parse_window(word)
        except ValueError:
            return text_message(
                f"`{escape(word[:40])}` is neither a repository (owner/name) nor a window "
                f"(like 30d, 12h or 8w); try `{command} stats acme/api 30d`."
            )
        window = word
    since = utcnow() - parse_window(window)
    outcomes = OutcomeStore(services.connection, prefix=services.store.prefix)
    visible = None if where is None else (lambda o: where(o.requester, o.channel))
    report = stats_report(
        outcomes.since(None), since=since, visible=visible, repos={repo} if repo else None
    )
    return stats_blocks(report, window, outcomes.refreshed_at())


def repo_reply(
    user: str, channel: str | None, words: list[str], services: Services, command: str
) -> tuple[str, list[dict[str, Any]]]:
    """``repo``: this channel's default repository; ``repo owner/name`` sets it and
    ``repo clear`` forgets it. Whoever may ask in the channel may set it; the
    allow-list still decides which repositories runs may target."""
    if not channel:
        return text_message(f"`{command} repo` works in a channel or a DM with me.")
    defaults = services.channel_repos
    if not words:
        found = defaults.lookup(channel)
        if found is None:
            return text_message(
                "This channel has no default repository, so I ask which one when a mention "
                f"names none. Set one with `{command} repo owner/name`."
            )
        source = f"set by <@{found.by}>" if found.by else "from AGENTS_CHANNEL_REPOS"
        return text_message(f"This channel's default repository is `{found.repo}` ({source}).")
    refusal = may_ask(user, channel, is_dm=channel.startswith("D"), settings=services.settings)
    if refusal is not None:
        return text_message(refusal.message)
    word = words[0].strip().strip("`<>").removesuffix(".git")
    if word.lower() in ("clear", "none"):
        cleared = defaults.clear(channel)
        still = defaults.get(channel)
        text = (
            "Cleared this channel's default repository."
            if cleared
            else ("This channel had no default repository of its own.")
        )
        if still:
            text += f" The operator's default, `{still}` (AGENTS_CHANNEL_REPOS), applies."
        return text_message(text)
    if not is_repo_name(word):
        return text_message(
            f"`{escape(word[:100])}` doesn't look like a repository name; try "
            f"`{command} repo acme/api`."
        )
    if not repo_allowed(word, services.settings.allowed_repos):
        return text_message(
            f"`{word}` is not on this bot's allow-list (AGENTS_ALLOWED_REPOS), so it can't "
            "be this channel's default. Ask an admin to add it."
        )
    defaults.set(channel, word, by=user)
    return text_message(
        f"This channel's default repository is now `{word}`: mention me without "
        "`in owner/name:` and I work on it."
    )


def handle_command(
    user: str,
    text: str,
    services: Services,
    visible: Callable[[Run], bool] | None = None,
    where: Callable[[str, str | None], bool] | None = None,
    channel: str | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """The ephemeral reply to ``/agents <text>`` from ``user``.

    ``visible`` says which runs ``user`` may see in detail (see
    :meth:`Services.visibility`); None shows all.
    """
    command = services.settings.slash_command
    words = text.split()
    verb = words[0].lower() if words else "help"
    if verb == "stats" and len(words) <= 3:
        return stats_reply(words[1:], services, where, command)
    if verb == "repo" and len(words) <= 2:
        return repo_reply(user, channel, words[1:], services, command)
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
        outcome = decisions.cancel(
            services.queue, run.id, user, approvers=services.settings.approvers
        )
        return text_message(outcome.text)
    if verb == "help":
        return text_message(help_text(command))
    return text_message(f"I don't know `{escape(text.strip()[:50])}`.\n" + help_text(command))


def register(app: App, services: Services) -> None:
    @app.command(services.settings.slash_command)
    def on_command(ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        user = command["user_id"]
        where = services.visibility_where(client, user)
        visible = services.visibility(client, user)
        text = command.get("text", "")
        fallback, blocks = handle_command(
            user, text, services, visible, where, channel=command.get("channel_id")
        )
        respond(text=fallback, blocks=blocks, response_type="ephemeral")
