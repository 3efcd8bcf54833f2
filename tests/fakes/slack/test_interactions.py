"""A real slack-bolt app routes the emulator's payloads: they are shaped like Slack's.

Bolt verifies each request's signature, parses it by content type, and dispatches
on ``type`` / ``action_id`` / ``callback_id`` / ``command``. A listener running at all
is the check; the assertions then look at what it did through the Web API.
"""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError

from fakes.slack import SlackEmulator, ViewInputError
from tests.fakes.slack.conftest import TinyBot


def start_run(emu: SlackEmulator) -> tuple[str, str]:
    """Alice mentions the bot; returns her message's ts and the bot's reply ts."""
    ts, delivery = emu.mention("U_ALICE", "C_GENERAL", "@agents in acme/api: fix the retries")
    assert delivery.ok, delivery.response_body
    reply = emu.wait_for(lambda: emu.thread("C_GENERAL", ts)[1:], what="the bot's reply")[0]
    return ts, reply["ts"]


def test_mention_gets_a_reaction_and_a_threaded_reply(emu: SlackEmulator, tinybot: TinyBot) -> None:
    ts, _ = start_run(emu)
    assert tinybot.log.mentions[0]["text"] == "<@U_BOT> in acme/api: fix the retries"
    assert emu.reactions("C_GENERAL", ts) == {"eyes": ["U_BOT"]}
    reply = emu.thread("C_GENERAL", ts)[1]
    assert reply["thread_ts"] == ts
    assert reply["text"] == "#1 acme/api: awaiting your decision"
    buttons = reply["blocks"][-1]["elements"]
    assert [b["action_id"] for b in buttons] == ["approve", "rework"]
    # The message event for the same post reached bolt's message listener too.
    emu.wait_for(lambda: tinybot.log.messages)
    assert tinybot.log.messages[0]["ts"] == ts
    assert emu.warnings == []


def test_approve_click_updates_the_message_and_responds(
    emu: SlackEmulator, tinybot: TinyBot
) -> None:
    _, reply_ts = start_run(emu)
    delivery = emu.click("U_ALICE", "C_GENERAL", reply_ts, "approve")
    assert delivery.ok
    emu.wait_for(lambda: emu.ephemerals("U_ALICE"), what="the respond() ephemeral")
    body = tinybot.log.actions[0]
    assert body["type"] == "block_actions"
    assert body["user"]["id"] == "U_ALICE"
    assert body["container"]["message_ts"] == reply_ts
    assert body["container"]["thread_ts"] == body["message"]["thread_ts"]
    assert body["actions"][0]["value"] == '{"run": 1}'
    assert body["actions"][0]["block_id"] == "run_actions"
    assert body["response_url"].startswith(f"{emu.url}/response/")
    message = emu.message("C_GENERAL", reply_ts)
    assert message is not None
    assert message["text"] == "#1 acme/api: approved"
    assert message["edited"]["user"] == "U_BOT"
    assert all(b["type"] != "actions" for b in message["blocks"])
    [ephemeral] = emu.ephemerals("U_ALICE")
    assert ephemeral["text"] == "You approved #1."
    assert ephemeral["source"] == "response_url"
    assert ephemeral["thread_ts"] == message["thread_ts"]
    assert emu.ephemerals("U_BOB") == []
    with pytest.raises(LookupError, match="action_id"):
        emu.click("U_ALICE", "C_GENERAL", reply_ts, "approve")  # the buttons are gone


def test_rework_opens_a_modal_whose_errors_show_and_then_submits(
    emu: SlackEmulator, tinybot: TinyBot
) -> None:
    root, reply_ts = start_run(emu)
    emu.click("U_BOB", "C_GENERAL", reply_ts, "rework")
    modal = emu.wait_for(lambda: emu.modal("U_BOB"), what="the rework modal")
    assert emu.calls("views.open")[0].ok
    assert modal["callback_id"] == "rework_modal"
    assert modal["title"]["text"] == "Rework #1"
    assert emu.modal("U_ALICE") is None

    with pytest.raises(ViewInputError) as refused:
        emu.submit_view("U_BOB", modal["id"], {})  # Slack's client refuses an empty field
    assert refused.value.errors == {"feedback": "Please complete this required field."}
    assert tinybot.log.submissions == []

    answer = emu.submit_view("U_BOB", modal["id"], {"feedback": "no"})
    assert answer.json == {
        "response_action": "errors",
        "errors": {"feedback": "Say a little more (5+ characters)."},
    }
    submitted = tinybot.log.submissions[0]
    assert submitted["type"] == "view_submission"
    assert submitted["view"]["state"]["values"] == {
        "feedback": {"text": {"type": "plain_text_input", "value": "no"}}
    }
    assert emu.view(modal["id"]).is_open
    assert emu.view(modal["id"]).errors == {"feedback": "Say a little more (5+ characters)."}

    answer = emu.submit_view("U_BOB", modal["id"], {"feedback": {"text": "Use a setting."}})
    assert answer.ok
    assert answer.json is None  # a plain ack() closes the modal
    assert not emu.view(modal["id"]).is_open
    assert emu.modal("U_BOB") is None
    emu.wait_for_message("C_GENERAL", "Rework requested: Use a setting.")
    assert emu.thread("C_GENERAL", root)[-1]["text"] == "Rework requested: Use a setting."


def test_a_trigger_id_works_once(emu: SlackEmulator, tinybot: TinyBot) -> None:
    _, reply_ts = start_run(emu)
    emu.click("U_BOB", "C_GENERAL", reply_ts, "rework")
    emu.wait_for(lambda: emu.modal("U_BOB"))
    trigger_id = tinybot.log.actions[0]["trigger_id"]
    with pytest.raises(SlackApiError) as exc:
        tinybot.app.client.views_open(
            trigger_id=trigger_id,
            view={"type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": []},
        )
    assert exc.value.response["error"] == "exchanged_trigger_id"


def test_slash_command_answers_ephemerally(emu: SlackEmulator, tinybot: TinyBot) -> None:
    delivery = emu.slash("U_ALICE", "C_GENERAL", "/agents", "status")
    assert delivery.ok
    command = tinybot.log.commands[0]
    assert command["command"] == "/agents"
    assert command["text"] == "status"
    assert command["user_id"] == "U_ALICE"
    assert command["channel_id"] == "C_GENERAL"
    assert command["response_url"].startswith(f"{emu.url}/response/")
    [ephemeral] = emu.ephemerals("U_ALICE")
    assert ephemeral["text"] == "1 running, 0 queued"
    assert ephemeral["source"] == "command_response"
    assert emu.messages("C_GENERAL") == []  # nobody else sees anything


def test_slash_command_respond_via_response_url(emu: SlackEmulator, tinybot: TinyBot) -> None:
    emu.slash("U_ALICE", "C_GENERAL", "/agents", "dance")
    emu.wait_for(lambda: emu.ephemerals("U_ALICE"), what="respond() via response_url")
    assert emu.ephemerals("U_ALICE")[0]["text"] == "Unknown subcommand 'dance'"
    with pytest.raises(ValueError, match="not a command"):
        emu.slash("U_ALICE", "C_GENERAL", "/deploy")
