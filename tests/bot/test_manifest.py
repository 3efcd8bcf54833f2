"""The app manifest declares everything the bot's code uses."""

from __future__ import annotations

import json
from pathlib import Path

from bot.blocks import ACTION_APPROVE
from process.settings import BotSettings

MANIFEST = json.loads((Path(__file__).resolve().parents[2] / "bot" / "manifest.json").read_text())


def test_events_scopes_command_and_modes() -> None:
    settings = MANIFEST["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_mention",
        "app_home_opened",
        "message.im",
    }
    assert settings["interactivity"]["is_enabled"]
    # The repository picker is an external select: Slack loads its options from here.
    assert settings["interactivity"]["message_menu_options_url"].endswith("/slack/events")
    assert settings["socket_mode_enabled"]
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    # chat.postMessage/update/postEphemeral, reactions.add/remove, views.open,
    # conversations.replies in channels, private channels and DMs, users.info;
    # conversations.info and .members (who may see a private channel's runs).
    assert scopes >= {
        "app_mentions:read",
        "chat:write",
        "commands",
        "reactions:write",
        "channels:history",
        "groups:history",
        "im:history",
        "users:read",
        "channels:read",
        "groups:read",
    }
    (command,) = MANIFEST["features"]["slash_commands"]
    assert command["command"] == BotSettings.model_fields["slash_command"].default
    assert ACTION_APPROVE.startswith("agents_")
