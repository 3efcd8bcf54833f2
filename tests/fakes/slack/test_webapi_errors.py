"""The emulator fails like Slack does, seen through the real slack_sdk WebClient."""

from __future__ import annotations

import json
import urllib.request

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from fakes.slack import SlackEmulator

TEXT_BLOCK = {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}


@pytest.fixture
def client(emu: SlackEmulator) -> WebClient:
    return WebClient(token=emu.bot_token, base_url=emu.api_url)


def error_of(exc: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(exc.value.response["error"])


def test_post_to_unknown_channel_is_channel_not_found(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C_NOPE", text="hello")
    assert error_of(exc) == "channel_not_found"


def test_update_and_react_on_unknown_ts_is_message_not_found(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel="C_GENERAL", ts="1700000000.000001", text="x")
    assert error_of(exc) == "message_not_found"
    with pytest.raises(SlackApiError) as exc:
        client.reactions_add(channel="C_GENERAL", timestamp="1700000000.000001", name="eyes")
    assert error_of(exc) == "message_not_found"
    with pytest.raises(SlackApiError) as exc:
        client.chat_getPermalink(channel="C_GENERAL", message_ts="1700000000.000001")
    assert error_of(exc) == "message_not_found"
    with pytest.raises(SlackApiError) as exc:
        client.conversations_replies(channel="C_GENERAL", ts="1700000000.000001")
    assert error_of(exc) == "thread_not_found"


def test_update_on_unknown_channel_is_channel_not_found(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel="C_NOPE", ts="1700000000.000001", text="x")
    assert error_of(exc) == "channel_not_found"


def test_too_many_blocks_are_invalid_blocks(client: WebClient, emu: SlackEmulator) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C_GENERAL", text="x", blocks=[TEXT_BLOCK] * 51)
    assert error_of(exc) == "invalid_blocks"
    messages = exc.value.response["response_metadata"]["messages"]
    assert messages == ["[ERROR] no more than 50 items allowed [json-pointer:/blocks]"]
    assert emu.messages("C_GENERAL") == []
    client.chat_postMessage(channel="C_GENERAL", text="x", blocks=[TEXT_BLOCK] * 50)


@pytest.mark.parametrize(
    ("block", "pointer"),
    [
        (
            {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}},
            "/blocks/0/text/text",
        ),
        ({"type": "section", "text": {"type": "mrkdwn", "text": ""}}, "/blocks/0/text/text"),
        ({"type": "section"}, "/blocks/0/text"),
        (
            {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
            "/blocks/0/text/text",
        ),
        ({"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}, "/blocks/0/text/type"),
        ({"type": "carousel"}, "/blocks/0"),
        ({"text": "no type"}, "/blocks/0"),
        ({"type": "divider", "block_id": "b" * 256}, "/blocks/0/block_id"),
        (
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": str(i)} for i in range(11)],
            },
            "/blocks/0/elements",
        ),
        ({"type": "actions", "elements": []}, "/blocks/0/elements"),
        (
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "ok"},
                        "action_id": "a",
                        "value": "v" * 2001,
                    }
                ],
            },
            "/blocks/0/elements/0/value",
        ),
        (
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "b" * 76},
                        "action_id": "a",
                    }
                ],
            },
            "/blocks/0/elements/0/text/text",
        ),
        (
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "mrkdwn", "text": "*b*"},
                        "action_id": "a",
                    }
                ],
            },
            "/blocks/0/elements/0/text/type",
        ),
        (
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "b"},
                        "action_id": "a" * 256,
                    }
                ],
            },
            "/blocks/0/elements/0/action_id",
        ),
        (
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "b"},
                        "action_id": "a",
                    }
                ]
                * 2,
            },
            "/blocks/0/elements/1/action_id",
        ),
        (
            {"type": "actions", "elements": [{"type": "slider", "action_id": "a"}]},
            "/blocks/0/elements/0",
        ),
    ],
)
def test_malformed_or_oversized_blocks_are_invalid_blocks(
    client: WebClient, block: dict[str, object], pointer: str
) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C_GENERAL", text="x", blocks=[block])
    assert error_of(exc) == "invalid_blocks"
    assert any(
        m.endswith(f"[json-pointer:{pointer}]")
        for m in exc.value.response["response_metadata"]["messages"]
    ), exc.value.response["response_metadata"]["messages"]


def test_duplicate_block_ids_are_invalid_blocks(client: WebClient) -> None:
    block = {"type": "divider", "block_id": "same"}
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C_GENERAL", text="x", blocks=[block, block])
    assert error_of(exc) == "invalid_blocks"


def test_chat_update_validates_blocks_too(client: WebClient, emu: SlackEmulator) -> None:
    ts = client.chat_postMessage(channel="C_GENERAL", text="x")["ts"]
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel="C_GENERAL", ts=ts, text="y", blocks=[{"type": "nope"}])
    assert error_of(exc) == "invalid_blocks"
    assert emu.message("C_GENERAL", ts)["text"] == "x"  # type: ignore[index]


def test_blocks_that_are_not_json_are_invalid_blocks_format(emu: SlackEmulator) -> None:
    """A form-encoded call with a broken ``blocks`` string (what a hand-rolled client sends)."""
    body = f"channel=C_GENERAL&text=x&blocks=%5B%7Bnot-json&token={emu.bot_token}".encode()
    url = f"{emu.api_url}chat.postMessage"
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        answer = json.load(response)
    assert answer["ok"] is False
    assert answer["error"] == "invalid_blocks_format"


def test_form_encoded_blocks_are_accepted(emu: SlackEmulator) -> None:
    blocks = json.dumps([TEXT_BLOCK])
    form = urllib.parse.urlencode({"channel": "C_GENERAL", "text": "x", "blocks": blocks})
    request = urllib.request.Request(  # noqa: S310
        f"{emu.api_url}chat.postMessage",
        data=form.encode(),
        headers={"Authorization": f"Bearer {emu.bot_token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        answer = json.load(response)
    assert answer["ok"] is True
    assert emu.calls("chat.postMessage")[0].args["blocks"] == [TEXT_BLOCK]
    stored = emu.messages("C_GENERAL")[0]["blocks"][0]
    assert stored["text"] == TEXT_BLOCK["text"]
    assert stored["block_id"]  # Slack fills in block_ids


def test_missing_text_fallback_is_ok_with_a_warning(client: WebClient, emu: SlackEmulator) -> None:
    with pytest.warns(UserWarning, match="top-level `text` argument is missing"):
        response = client.chat_postMessage(channel="C_GENERAL", blocks=[TEXT_BLOCK])
    assert response["ok"] is True
    assert response["warning"] == "missing_text_or_fallback_or_attachments"
    assert response["response_metadata"]["warnings"] == ["missing_text_or_fallback_or_attachments"]
    assert any("missing_text_or_fallback_or_attachments" in w for w in emu.warnings)


def test_no_text_and_no_blocks_is_no_text(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc, pytest.warns(UserWarning, match="`text`"):
        client.chat_postMessage(channel="C_GENERAL")
    assert error_of(exc) == "no_text"


def test_bad_or_missing_token(emu: SlackEmulator) -> None:
    with pytest.raises(SlackApiError) as exc:
        WebClient(token="xoxb-wrong", base_url=emu.api_url).auth_test()
    assert error_of(exc) == "invalid_auth"
    with pytest.raises(SlackApiError) as exc:
        WebClient(base_url=emu.api_url).auth_test()
    assert error_of(exc) == "not_authed"


def test_auth_test_describes_the_bot(client: WebClient, emu: SlackEmulator) -> None:
    answer = client.auth_test()
    assert answer["user_id"] == emu.bot_user_id == "U_BOT"
    assert answer["bot_id"] == "B_AGENTS"
    assert answer["team_id"] == emu.team_id
    assert answer["user"] == "agents"
    assert answer["url"].startswith(emu.url)


def test_unknown_method_is_reported(client: WebClient, emu: SlackEmulator) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.api_call("chat.scheduleMessage", json={"channel": "C_GENERAL", "text": "x"})
    assert error_of(exc) == "unknown_method"
    assert any("chat.scheduleMessage" in w for w in emu.warnings)


def test_reactions_errors(client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C_GENERAL", text="x")["ts"]
    client.reactions_add(channel="C_GENERAL", timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError) as exc:
        client.reactions_add(channel="C_GENERAL", timestamp=ts, name="eyes")
    assert error_of(exc) == "already_reacted"
    with pytest.raises(SlackApiError) as exc:
        client.reactions_add(channel="C_GENERAL", timestamp=ts, name=":eyes:")
    assert error_of(exc) == "invalid_name"
    with pytest.raises(SlackApiError) as exc:
        client.reactions_remove(channel="C_GENERAL", timestamp=ts, name="tada")
    assert error_of(exc) == "no_reaction"


def test_bot_cannot_edit_peoples_messages(client: WebClient, emu: SlackEmulator) -> None:
    ts, deliveries = emu.post("U_ALICE", "C_GENERAL", "mine")  # no bot connected: stored only
    assert deliveries == []
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel="C_GENERAL", ts=ts, text="edited")
    assert error_of(exc) == "cant_update_message"


def test_ephemeral_to_non_member_and_unknown_user(client: WebClient, emu: SlackEmulator) -> None:
    emu.add_channel("C_SMALL", "small", members=["U_ALICE"])
    with pytest.raises(SlackApiError) as exc:
        client.chat_postEphemeral(channel="C_SMALL", user="U_BOB", text="psst")
    assert error_of(exc) == "user_not_in_channel"
    with pytest.raises(SlackApiError) as exc:
        client.chat_postEphemeral(channel="C_SMALL", user="U_NOBODY", text="psst")
    assert error_of(exc) == "user_not_found"
    client.chat_postEphemeral(channel="C_SMALL", user="U_ALICE", text="psst")
    assert [e["text"] for e in emu.ephemerals("U_ALICE")] == ["psst"]
    assert emu.ephemerals("U_BOB") == []


def test_channel_the_bot_is_not_in(client: WebClient, emu: SlackEmulator) -> None:
    emu.add_channel("C_PRIVATE", "secret", private=True, bot_member=False)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C_PRIVATE", text="hi")
    assert error_of(exc) == "not_in_channel"


def test_reply_to_a_missing_thread_is_ok_but_warned(client: WebClient, emu: SlackEmulator) -> None:
    """Slack answers ok and the reply is never seen; the emulator says so."""
    answer = client.chat_postMessage(channel="C_GENERAL", text="lost", thread_ts="1.000001")
    assert answer["ok"] is True
    assert any("never seen" in w for w in emu.warnings)
    assert emu.messages("C_GENERAL") == []


def test_views_open_needs_a_fresh_trigger(client: WebClient) -> None:
    modal = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Rework"},
        "blocks": [],
    }
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id="123.456.abc", view=modal)
    assert error_of(exc) == "invalid_trigger_id"


def test_views_publish_validates_the_view(client: WebClient, emu: SlackEmulator) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.views_publish(user_id="U_ALICE", view={"type": "home", "blocks": [{"type": "x"}]})
    assert error_of(exc) == "invalid_arguments"
    home = {"type": "home", "blocks": [TEXT_BLOCK]}
    published = client.views_publish(user_id="U_ALICE", view=home)["view"]
    assert emu.home("U_ALICE") is not None
    assert emu.home("U_ALICE")["id"] == published["id"]  # type: ignore[index]
    with pytest.raises(SlackApiError) as exc:
        client.views_publish(user_id="U_NOBODY", view=home)
    assert error_of(exc) == "user_not_found"
