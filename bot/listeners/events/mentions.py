"""Mentions and DMs: turn a message into a run, or into input for the thread's run.

On success, in this order: create the run, enqueue it, add :eyes: to the message, and
ask the reporter (the one writer of a run's thread) for the status message. Only Redis
and a few Slack calls run here; the work happens on a worker.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from redis.exceptions import RedisError
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks import escape, text_message
from bot.channel_repos import PendingAsk
from bot.repo_picker import picker_blocks
from bot.requests import USAGE, Ask, Help, NoRepo, may_ask, parse, strip_mentions
from bot.services import Services
from jobs import decisions
from process.exceptions import ThreadAlreadyHasRun
from runs.outcomes import OutcomeStore
from runs.record import Estimate, Run, RunStatus, utcnow
from runs.stats import estimate

log = logging.getLogger(__name__)

MAX_CONTEXT_MESSAGES = 30
#: Finished runs older than this don't say what a run takes now.
ESTIMATE_WINDOW = timedelta(days=90)
MAX_CONTEXT_CHARS = 8000


def reply(client: WebClient, channel: str, thread_ts: str, text: str) -> None:
    fallback, blocks = text_message(text)
    client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=fallback, blocks=blocks)


def thread_context(
    client: WebClient,
    channel: str,
    thread_ts: str,
    before: str,
    allowed_users: Collection[str] = (),
) -> str | None:
    """The thread's earlier messages as ``<@user>: text`` lines, newest kept, bounded.

    With an allow-list (AGENTS_ALLOWED_USERS), only its users' messages are kept: someone
    who may not ask the bot for anything can't steer a run through the thread either.
    """
    try:
        response = client.conversations_replies(channel=channel, ts=thread_ts, limit=100)
    except SlackApiError as exc:
        log.warning("could not read thread %s/%s: %s", channel, thread_ts, exc)
        return None
    messages: list[dict[str, Any]] = response.get("messages", [])
    lines = [
        f"<@{m.get('user') or m.get('bot_id') or '?'}>: {m.get('text', '')}"
        for m in messages
        if float(m.get("ts", "0")) < float(before)
        and (not allowed_users or m.get("user") in allowed_users)
    ][-MAX_CONTEXT_MESSAGES:]
    text = "\n".join(lines)
    return text[-MAX_CONTEXT_CHARS:] if text else None


def similar_runs(services: Services, repo: str) -> Estimate | None:
    """What the last finished runs on ``repo`` took, for the status message; None with
    too few of them, or when the figures can't be read (a run never waits on them)."""
    try:
        outcomes = OutcomeStore(services.connection, prefix=services.store.prefix)
        return estimate(outcomes.since(utcnow() - ESTIMATE_WINDOW), repo)
    except (RedisError, ValueError) as exc:
        log.warning("no estimate for %s: %s", repo, exc)
        return None


def handle_message(event: dict[str, Any], client: WebClient, services: Services) -> Run | None:
    """Handle one mention or DM. Returns the run it created, if any."""
    channel, ts = event["channel"], event["ts"]
    user = event.get("user")
    if not user or event.get("bot_id") or event.get("subtype"):
        return None
    if not services.first_delivery(channel, ts):
        return None
    thread_ts = event.get("thread_ts")
    reply_to = thread_ts or ts
    is_dm = event.get("channel_type") == "im" or channel.startswith("D")
    refusal = may_ask(user, channel, is_dm=is_dm, settings=services.settings)
    if refusal:
        reply(client, channel, reply_to, refusal.message)
        return None
    text = event.get("text", "")
    if thread_ts:
        existing = services.store.find_by_thread(channel, thread_ts)
        if existing is not None:
            follow_up(existing, user, text, client, services)
            return None
    default = services.channel_repos.get(channel)
    parsed = parse(text, channel=channel, settings=services.settings, default_repo=default)
    if isinstance(parsed, Help):
        reply(client, channel, reply_to, USAGE)
        return None
    if isinstance(parsed, NoRepo):
        ask_for_repo(
            client, services, PendingAsk(user, channel, ts, reply_to, parsed.text, parsed.plan)
        )
        return None
    if not isinstance(parsed, Ask):
        reply(client, channel, reply_to, parsed.message)
        return None
    context = (
        thread_context(client, channel, thread_ts, ts, services.settings.allowed_users)
        if thread_ts
        else None
    )
    ask = PendingAsk(user, channel, ts, reply_to, parsed.text, parsed.plan)
    return start_run(client, services, ask, parsed.repo, context)


def ask_for_repo(client: WebClient, services: Services, ask: PendingAsk) -> None:
    """No repository and no channel default: ask with a picker, keeping the request."""
    token = services.pending_asks.keep(ask)
    fallback, blocks = picker_blocks(token, ask.text)
    client.chat_postMessage(
        channel=ask.channel, thread_ts=ask.thread_ts, text=fallback, blocks=blocks
    )


def start_run(
    client: WebClient,
    services: Services,
    ask: PendingAsk,
    repo: str,
    context: str | None = None,
) -> Run | None:
    """Create the run for ``ask`` on ``repo`` and enqueue it, then :eyes: on the message
    and the status message (by the reporter). None if the thread already has a run."""
    channel, ts, reply_to = ask.channel, ask.ts, ask.thread_ts
    try:
        run = services.store.create(
            estimate=similar_runs(services, repo),
            requester=ask.user,
            repo=repo,
            request=ask.text,
            channel=channel,
            thread_ts=reply_to,
            message_ts=ts,
            context=context,
            plan_asked=ask.plan,
            home_queue=services.settings.queue,
        )
    except ThreadAlreadyHasRun as exc:
        reply(client, channel, reply_to, f"This thread already belongs to run #{exc.run_id}.")
        return None
    services.queue.enqueue(run)
    try:
        client.reactions_add(channel=channel, timestamp=ts, name="eyes")
    except SlackApiError as exc:
        log.warning("could not react to %s/%s: %s", channel, ts, exc)
    # The reporter writes the thread; the status message is asked for now, so it shows
    # within the second (if this fails, the reporter's next draw posts it).
    try:
        return services.reporter.post_status(run.id) or run
    except SlackApiError as exc:
        log.warning("run #%s: the status message could not be posted yet: %s", run.id, exc)
        return run


def follow_up(run: Run, user: str, text: str, client: WebClient, services: Services) -> None:
    """A mention in a run's thread never forks a second run: it steers the first one,
    if the writer may (see :func:`jobs.decisions.steer`). A refusal is told to the
    writer alone; the run is unchanged."""
    channel, thread_ts = run.channel or "", run.thread_ts or ""
    outcome = decisions.steer(
        services.queue,
        run.id,
        user,
        strip_mentions(text),
        approvers=services.settings.approvers,
    )
    if outcome.kind == "stale" and run.status.is_final:
        reply(
            client,
            channel,
            thread_ts,
            f"{run.label} is {run.status.value}. To ask for something new, mention me in a "
            "new message rather than in this thread.",
        )
        return
    if not outcome.done:
        if outcome.kind == "empty" and run.status is not RunStatus.AWAITING_DECISION:
            return  # a bare mention while it works: nothing to keep
        client.chat_postEphemeral(
            channel=channel, user=user, thread_ts=thread_ts, text=outcome.text
        )
        return
    quoted = escape((outcome.quoted or "")[:200])
    if outcome.kind == "reworking" and outcome.run is not None:
        reply(
            client,
            channel,
            thread_ts,
            f"Got it: starting iteration {outcome.run.iteration} of {run.label} with "
            f"<@{user}>'s feedback, on the same branch.",
        )
    else:
        reply(
            client,
            channel,
            thread_ts,
            f"{run.label} is still working. I've queued your message for its next "
            f"iteration: “{quoted}”",
        )


def register(app: App, services: Services) -> None:
    @app.event("app_mention")
    def on_mention(event: dict[str, Any], client: WebClient) -> None:
        handle_message(event, client, services)

    @app.event("message")
    def on_message(event: dict[str, Any], client: WebClient) -> None:
        # Channel messages arrive as app_mention; only DMs are handled from here.
        if event.get("channel_type") == "im":
            handle_message(event, client, services)
