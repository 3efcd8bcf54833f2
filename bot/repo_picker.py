"""The repository picker: asked instead of a refusal when a mention names no repository
and its channel has no default. Pure functions (the blocks and the menu's options), so
what a user can be offered is tested without Slack.

The menu is an external select: Slack asks the bot for options as the user types, and
only repositories on the allow-list are offered, so a pick is always one the bot would
take (it is still checked again when it arrives, as anything from a payload is).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.blocks import escape
from bot.requests import repo_allowed
from process.repo_names import is_repo_name

ACTION_PICK_REPO = "agents_pick_repo"
#: The picker's block id is this, a colon, and the pending request's token.
PICKER_BLOCK = "agents_repo_picker"
#: Slack shows at most 100 options, each text at most 75 characters.
MAX_OPTIONS = 100
MAX_OPTION_TEXT = 75


def picker_blocks(token: str, request: str) -> tuple[str, list[dict[str, Any]]]:
    """The question, with the request it is for and a menu of repositories."""
    shown = escape(request if len(request) <= 200 else request[:199] + "…")
    text = (
        f"Which repository should I change for “{shown}”? Pick one and I'll start. "
        "(`/agents repo owner/name` sets this channel's default, so I don't ask again.)"
    )
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "block_id": f"{PICKER_BLOCK}:{token}",
            "elements": [
                {
                    "type": "external_select",
                    "action_id": ACTION_PICK_REPO,
                    "placeholder": {"type": "plain_text", "text": "owner/name"},
                    "min_query_length": 0,
                }
            ],
        },
    ]
    return f"Which repository should I change for “{request[:200]}”?", blocks


def picked_blocks(repo: str, user: str) -> tuple[str, list[dict[str, Any]]]:
    """The answer to the picker, said in the thread: what was picked and by whom."""
    text = f"<@{user}> picked `{escape(repo)}`."
    return text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]


def token_of(block_id: str) -> str | None:
    """The pending request's token in a picker's block id; None for any other block."""
    prefix, colon, token = block_id.partition(":")
    return token if prefix == PICKER_BLOCK and colon and token.isalnum() else None


def repo_options(typed: str, *, allowed: list[str], known: Iterable[str]) -> list[dict[str, Any]]:
    """The menu's options for what the user typed: the allow-list's exact names, the
    repositories channels default to and recent runs used, and the typed name itself
    when it is a repository the allow-list takes (so ``owner/*`` can be picked from);
    only allowed ones, containing the typed text, at most :data:`MAX_OPTIONS`."""
    query = typed.strip().strip("`").removesuffix(".git")
    exact = [p for p in allowed if "*" not in p and "?" not in p and "[" not in p]
    candidates = ([query] if is_repo_name(query) else []) + exact + list(known)
    seen: set[str] = set()
    options = []
    for repo in candidates:
        folded = repo.lower()
        if folded in seen or query.lower() not in folded:
            continue
        if not is_repo_name(repo) or not repo_allowed(repo, allowed):
            continue
        seen.add(folded)
        text = repo if len(repo) <= MAX_OPTION_TEXT else repo[: MAX_OPTION_TEXT - 1] + "…"
        options.append({"text": {"type": "plain_text", "text": text}, "value": repo})
        if len(options) == MAX_OPTIONS:
            break
    return options
