"""``response_url`` behaves like Slack's: ephemeral by default, in_channel, replace,
delete, at most five uses; and trigger_ids expire."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from fakes.slack import SlackEmulator
from tests.fakes.slack.tinybot import RecordingBot

BUTTONS = [
    {
        "type": "actions",
        "block_id": "acts",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Approve"},
                "action_id": "approve",
                "value": "v",
            }
        ],
    }
]


def clicked(emu: SlackEmulator, recorder: RecordingBot) -> tuple[str, dict[str, Any]]:
    """Post a bot message in a thread with a button, click it; the ts and the payload."""
    client = WebClient(token=emu.bot_token, base_url=emu.api_url)
    root = client.chat_postMessage(channel="C_GENERAL", text="root")["ts"]
    ts = client.chat_postMessage(
        channel="C_GENERAL", text="with a button", blocks=BUTTONS, thread_ts=root
    )["ts"]
    emu.click("U_ALICE", "C_GENERAL", ts, "approve")
    return ts, recorder.payloads()[-1]


def test_default_is_an_ephemeral_in_the_same_thread(
    emu: SlackEmulator, recorder: RecordingBot
) -> None:
    ts, payload = clicked(emu, recorder)
    response = WebhookClient(payload["response_url"]).send(text="only for you")
    assert response.status_code == 200
    assert response.body == "ok"
    [ephemeral] = emu.ephemerals("U_ALICE")
    assert ephemeral["text"] == "only for you"
    assert ephemeral["thread_ts"] == emu.message("C_GENERAL", ts)["thread_ts"]  # type: ignore[index]


def test_in_channel_replace_and_delete(emu: SlackEmulator, recorder: RecordingBot) -> None:
    ts, payload = clicked(emu, recorder)
    hook = WebhookClient(payload["response_url"])
    assert hook.send(text="for everyone", response_type="in_channel").status_code == 200
    assert emu.wait_for_message("C_GENERAL", "for everyone")["user"] == "U_BOT"

    assert hook.send(text="approved", replace_original=True).status_code == 200
    message = emu.message("C_GENERAL", ts)
    assert message is not None
    assert message["text"] == "approved"
    assert "blocks" not in message
    assert [e.text for e in emu.edits("C_GENERAL", ts)] == ["with a button"]

    assert hook.send_dict({"delete_original": True}).status_code == 200
    assert emu.message("C_GENERAL", ts) is None


def test_a_response_url_works_five_times(emu: SlackEmulator, recorder: RecordingBot) -> None:
    _, payload = clicked(emu, recorder)
    hook = WebhookClient(payload["response_url"])
    assert [hook.send(text=str(i)).status_code for i in range(5)] == [200] * 5
    sixth = hook.send(text="6")
    assert (sixth.status_code, sixth.body) == (404, "used_url")
    unknown = WebhookClient(f"{emu.url}/response/nope").send(text="x")
    assert (unknown.status_code, unknown.body) == (404, "expired_url")


def test_bad_messages_to_a_response_url(emu: SlackEmulator, recorder: RecordingBot) -> None:
    _, payload = clicked(emu, recorder)
    hook = WebhookClient(payload["response_url"])
    bad = hook.send(text="x", blocks=[{"type": "nope"}])
    assert (bad.status_code, bad.body) == (400, "invalid_blocks")
    empty = hook.send_dict({"response_type": "ephemeral"})
    assert (empty.status_code, empty.body) == (400, "no_text")


def test_an_expired_trigger_id(emu: SlackEmulator, recorder: RecordingBot) -> None:
    emu.trigger_ttl = -1.0  # every trigger is already too old
    _, payload = clicked(emu, recorder)
    client = WebClient(token=emu.bot_token, base_url=emu.api_url)
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Late"}, "blocks": []}
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id=payload["trigger_id"], view=modal)
    assert exc.value.response["error"] == "expired_trigger_id"
    assert any("trigger_id used after" in w for w in emu.warnings)


def test_views_update_push_and_hash_conflict(emu: SlackEmulator, recorder: RecordingBot) -> None:
    _, payload = clicked(emu, recorder)
    client = WebClient(token=emu.bot_token, base_url=emu.api_url)
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "One"}, "blocks": []}
    view = client.views_open(trigger_id=payload["trigger_id"], view=modal)["view"]
    two = dict(modal, title={"type": "plain_text", "text": "Two"})
    updated = client.views_update(view_id=view["id"], hash=view["hash"], view=two)["view"]
    assert updated["title"]["text"] == "Two"
    assert emu.modal("U_ALICE")["title"]["text"] == "Two"  # type: ignore[index]
    with pytest.raises(SlackApiError) as exc:
        client.views_update(view_id=view["id"], hash=view["hash"], view=two)  # stale hash
    assert exc.value.response["error"] == "hash_conflict"
    long_title = dict(modal, title={"type": "plain_text", "text": "x" * 25})
    with pytest.raises(SlackApiError) as exc:
        client.views_update(view_id=view["id"], view=long_title)
    assert exc.value.response["error"] == "invalid_arguments"
    with pytest.raises(SlackApiError) as exc:
        client.views_update(view_id="V_NOPE", view=two)
    assert exc.value.response["error"] == "not_found"


def test_closing_a_modal_notifies_when_asked(emu: SlackEmulator, recorder: RecordingBot) -> None:
    _, payload = clicked(emu, recorder)
    client = WebClient(token=emu.bot_token, base_url=emu.api_url)
    modal = {
        "type": "modal",
        "callback_id": "m",
        "notify_on_close": True,
        "title": {"type": "plain_text", "text": "One"},
        "blocks": [],
    }
    view = client.views_open(trigger_id=payload["trigger_id"], view=modal)["view"]
    delivery = emu.close_view("U_ALICE", view["id"])
    assert delivery is not None
    assert recorder.payloads()[-1]["type"] == "view_closed"
    assert not emu.view(view["id"]).is_open
