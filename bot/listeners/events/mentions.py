"""Mentions and DMs: turn a message into a run, or into input for the thread's run.

On success, in this order: create the run, enqueue it, add :eyes: to the message, post
the status message in the thread (and claim it as the run's, unless the reporter posted
one first). Only Redis and a few Slack calls run here; the work
happens on a worker.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks import escape, run_message, text_message
from bot.reporter import claim_status_message
from bot.requests import (
    MAX_REQUEST_CHARS,
    USAGE,
    Ask,
    Help,
    may_ask,
    may_decide,
    parse,
    strip_mentions,
)
from bot.services import Services
from process.exceptions import InvalidTransition, ThreadAlreadyHasRun
from runs.projection import project
from runs.record import Run, RunStatus, approval_in_progress

log = logging.getLogger(__name__)

MAX_CONTEXT_MESSAGES = 30
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
    parsed = parse(text, channel=channel, settings=services.settings)
    if isinstance(parsed, Help):
        reply(client, channel, reply_to, USAGE)
        return None
    if not isinstance(parsed, Ask):
        reply(client, channel, reply_to, parsed.message)
        return None
    context = (
        thread_context(client, channel, thread_ts, ts, services.settings.allowed_users)
        if thread_ts
        else None
    )
    try:
        run = services.store.create(
            requester=user,
            repo=parsed.repo,
            request=parsed.text,
            channel=channel,
            thread_ts=reply_to,
            message_ts=ts,
            context=context,
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
    fallback, blocks = run_message(project(run, services.store.events(run.id)))
    posted = client.chat_postMessage(
        channel=channel, thread_ts=reply_to, text=fallback, blocks=blocks
    )
    # If this post took longer than the reporter's grace (Slack retries), the reporter
    # has posted a status message of its own: one of the two is deleted, never both kept.
    return claim_status_message(services.store, client, run.id, channel, str(posted["ts"]))


def follow_up(run: Run, user: str, text: str, client: WebClient, services: Services) -> None:
    """A mention in a run's thread never forks a second run: it feeds the first one."""
    channel, thread_ts = run.channel or "", run.thread_ts or ""
    feedback = strip_mentions(text)
    if len(feedback) > MAX_REQUEST_CHARS and not run.status.is_final:
        reply(
            client,
            channel,
            thread_ts,
            f"That message is {len(feedback):,} characters; I take at most "
            f"{MAX_REQUEST_CHARS:,} for {run.label}, so I didn't use it. Put the details in "
            "an issue or a file in the repository and point me at it.",
        )
        return
    if run.status is RunStatus.AWAITING_DECISION:
        if not may_decide(user, run.requester, services.settings):
            reply(
                client,
                channel,
                thread_ts,
                f"Only <@{run.requester}> or an approver can ask for rework on {run.label}.",
            )
            return
        if not feedback:
            reply(client, channel, thread_ts, "Tell me what to change and I'll rework it.")
            return
        try:
            reworked = services.queue.request_rework(run.id, by=user, feedback=feedback)
        except InvalidTransition:
            current = services.store.get(run.id)
            why = (
                "is being approved"
                if approval_in_progress(current)
                else "is no longer awaiting a decision"
            )
            reply(client, channel, thread_ts, f"{run.label} {why}; your feedback was not used.")
            return
        reply(
            client,
            channel,
            thread_ts,
            f"Got it: starting iteration {reworked.iteration} of {run.label} with your "
            "feedback, on the same branch.",
        )
        return
    if run.status.is_final:
        reply(
            client,
            channel,
            thread_ts,
            f"{run.label} is {run.status.value}. To ask for something new, mention me in a "
            "new message rather than in this thread.",
        )
        return
    if not feedback:
        return

    def queue_feedback(r: Run) -> None:
        r.pending_feedback.append(feedback)

    services.store.update(run.id, queue_feedback)
    reply(
        client,
        channel,
        thread_ts,
        f"{run.label} is still working. I've queued your message for its next iteration: "
        f"“{escape(feedback[:200])}”",
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
