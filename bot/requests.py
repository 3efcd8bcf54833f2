"""Reading a mention: which repository, what to do, and whether this user may ask.

Pure functions, so every message a user can type is tested without Slack.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from bot.blocks import escape
from process.repo_names import repo_problem
from process.settings import BotSettings

MAX_REQUEST_CHARS = 4000

USAGE = (
    "Ask me to change a repository and I'll open a pull request:\n"
    "• `@agents in acme/api: make the retry limit configurable`\n"
    "• `@agents repo:acme/api make the retry limit configurable`\n"
    "• in a channel with a default repository: `@agents make the retry limit configurable` "
    "(`/agents repo owner/name` sets it; without one, I ask which repository)\n"
    "• a plan first, for you to approve before any code: "
    "`@agents plan in acme/api: make the retry limit configurable`\n"
    "I reply in a thread with progress, then post *Approve* / *Rework* buttons. "
    "`/agents status` shows the queue and costs."
)

_MENTION = re.compile(r"<@[A-Z0-9_]+(?:\|[^>]*)?>")
_IN_REPO = re.compile(r"^\s*in\s+(?P<repo>[^\s:]+)\s*:\s*(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
_REPO_TAG = re.compile(r"(?:^|\s)repo:(?P<repo>\S+)", re.IGNORECASE)
#: ``plan in owner/repo: ...``, ``plan repo:owner/repo ...`` or ``plan: ...``.
_PLAN = re.compile(r"^\s*plan(?:\s*:\s*|\s+(?=in\s|repo:))(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Ask:
    repo: str
    text: str
    #: The requester asked for a plan to approve before any code.
    plan: bool = False


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class NoRepo:
    """A request that names no repository, in a channel without a default: the bot asks
    which one (a picker) rather than refusing."""

    text: str
    #: The requester asked for a plan first (kept while they pick the repository).
    plan: bool = False


@dataclass(frozen=True)
class Refusal:
    """Why nothing will happen, written for the user, with how to fix it."""

    message: str


def strip_mentions(text: str) -> str:
    return _MENTION.sub(" ", text).strip()


def repo_allowed(repo: str, allowed: list[str]) -> bool:
    """Whether ``repo`` matches the allow-list (``owner/name`` or ``owner/*``; empty
    allows any), case-insensitively as GitHub names are."""
    return not allowed or any(
        fnmatch.fnmatchcase(repo.lower(), pattern.lower()) for pattern in allowed
    )


def parse(
    text: str, *, channel: str, settings: BotSettings, default_repo: str | None = None
) -> Ask | Help | NoRepo | Refusal:
    """Turn the text of a mention into a request, the usage text, a request waiting for
    a repository, or a refusal. ``default_repo`` is the channel's default (set with
    ``/agents repo``); without one, AGENTS_CHANNEL_REPOS is asked."""
    body = strip_mentions(text)
    if not body or body.lower() in {"help", "?", "usage"}:
        return Help()
    planned = _PLAN.match(body)
    if planned:
        body = planned.group("rest").strip()
    repo: str | None = None
    match = _IN_REPO.match(body)
    if match:
        repo, body = match.group("repo"), match.group("rest").strip()
    else:
        tag = _REPO_TAG.search(body)
        if tag:
            repo = tag.group("repo")
            body = (body[: tag.start()] + " " + body[tag.end() :]).strip()
    if repo is None:
        repo = default_repo or settings.channel_repos.get(channel)
        if repo is None:
            too_long = _too_long(body)
            return too_long if too_long is not None else NoRepo(text=body, plan=planned is not None)
    repo = repo.strip().strip("`<>").removesuffix(".git")
    problem = repo_problem(repo)
    if problem is not None:
        return Refusal(
            f"`{escape(repo[:100])}` doesn't look like a repository name ({problem}). "
            "Write it as `owner/name`, for example `in acme/api: …`."
        )
    if not body:
        return Refusal(
            f"What should I change in `{repo}`? Add the request after the repository, "
            f"for example `in {repo}: make the retry limit configurable`."
        )
    too_long = _too_long(body)
    if too_long is not None:
        return too_long
    if not repo_allowed(repo, settings.allowed_repos):
        return Refusal(
            f"`{repo}` is not on this bot's allow-list, so I won't work on it. Ask an admin to "
            "add it to AGENTS_ALLOWED_REPOS, or pick one of: "
            + ", ".join(f"`{escape(p)}`" for p in settings.allowed_repos)
        )
    return Ask(repo=repo, text=body, plan=planned is not None)


def _too_long(body: str) -> Refusal | None:
    if len(body) <= MAX_REQUEST_CHARS:
        return None
    return Refusal(
        f"That request is {len(body):,} characters; I take at most {MAX_REQUEST_CHARS:,}. "
        "Put the details in an issue or a file in the repository and point me at it."
    )


def may_ask(user: str, channel: str, *, is_dm: bool, settings: BotSettings) -> Refusal | None:
    """None when ``user`` may start runs in ``channel``; otherwise why not."""
    if settings.allowed_users and user not in settings.allowed_users:
        return Refusal(
            "You're not on this bot's list of users (AGENTS_ALLOWED_USERS). "
            "Ask an admin to add you."
        )
    if not is_dm and settings.allowed_channels and channel not in settings.allowed_channels:
        return Refusal(
            "I don't take requests in this channel (AGENTS_ALLOWED_CHANNELS). "
            "Ask in one of the allowed channels, or DM me."
        )
    return None
