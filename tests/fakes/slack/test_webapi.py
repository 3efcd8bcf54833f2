"""What the Web API returns and records when the bot uses it correctly."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient

from fakes.slack import SlackEmulator


@pytest.fixture
def client(emu: SlackEmulator) -> WebClient:
    return WebClient(token=emu.bot_token, base_url=emu.api_url)


def test_post_update_thread_and_history(client: WebClient, emu: SlackEmulator) -> None:
    parent = client.chat_postMessage(channel="C_GENERAL", text="parent")
    assert parent["channel"] == "C_GENERAL"
    assert parent["message"]["bot_id"] == "B_AGENTS"
    reply = client.chat_postMessage(channel="C_GENERAL", text="reply", thread_ts=parent["ts"])
    client.chat_update(channel="C_GENERAL", ts=reply["ts"], text="reply, edited")

    thread = client.conversations_replies(channel="C_GENERAL", ts=parent["ts"])["messages"]
    assert [m["text"] for m in thread] == ["parent", "reply, edited"]
    assert thread[0]["reply_count"] == 1
    assert thread[1]["thread_ts"] == parent["ts"]
    assert thread[1]["edited"]["user"] == "U_BOT"
    assert [e.text for e in emu.edits("C_GENERAL", reply["ts"])] == ["reply"]

    history = client.conversations_history(channel="C_GENERAL")["messages"]
    assert [m["text"] for m in history] == ["parent"]  # top level only, newest first
    assert emu.thread("C_GENERAL", reply["ts"])[0]["ts"] == parent["ts"]


def test_chat_update_keeps_blocks_when_omitted(client: WebClient, emu: SlackEmulator) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*run*"}}]
    ts = client.chat_postMessage(channel="C_GENERAL", text="run", blocks=blocks)["ts"]
    client.chat_update(channel="C_GENERAL", ts=ts, text="run, renamed")
    message = emu.message("C_GENERAL", ts)
    assert message is not None
    assert message["blocks"][0]["text"]["text"] == "*run*"
    client.chat_update(channel="C_GENERAL", ts=ts, text="no blocks", blocks=[])
    assert "blocks" not in (emu.message("C_GENERAL", ts) or {})


def test_calls_are_recorded_with_decoded_args(client: WebClient, emu: SlackEmulator) -> None:
    blocks = [{"type": "divider"}]
    ts = client.chat_postMessage(channel="C_GENERAL", text="x", blocks=blocks)["ts"]
    client.reactions_add(channel="C_GENERAL", timestamp=ts, name="eyes")  # form-encoded
    calls = emu.calls()
    assert [c.method for c in calls] == ["chat.postMessage", "reactions.add"]
    assert calls[0].args["blocks"] == blocks
    assert calls[1].args == {"channel": "C_GENERAL", "timestamp": ts, "name": "eyes"}
    assert calls[0].at <= calls[1].at
    assert all(c.ok and "token" not in c.args for c in calls)
    assert emu.reactions("C_GENERAL", ts) == {"eyes": ["U_BOT"]}


def test_permalink_users_and_conversations(client: WebClient, emu: SlackEmulator) -> None:
    ts = client.chat_postMessage(channel="C_GENERAL", text="x")["ts"]
    link = client.chat_getPermalink(channel="C_GENERAL", message_ts=ts)["permalink"]
    assert link == f"{emu.url}/archives/C_GENERAL/p{ts.replace('.', '')}"
    user = client.users_info(user="U_ALICE")["user"]
    assert user["name"] == "alice"
    assert user["profile"]["real_name"] == "Alice Example"
    assert client.conversations_info(channel="C_GENERAL")["channel"]["name"] == "general"
    dm = client.conversations_open(users="U_BOB")["channel"]["id"]
    assert dm == emu.dm("U_BOB")
    posted = client.chat_postMessage(channel="U_BOB", text="hi in DM")  # a user id means the DM
    assert posted["channel"] == dm


def test_ephemeral_in_thread(client: WebClient, emu: SlackEmulator) -> None:
    ts = client.chat_postMessage(channel="C_GENERAL", text="x")["ts"]
    answer = client.chat_postEphemeral(
        channel="C_GENERAL", user="U_ALICE", text="only you", thread_ts=ts
    )
    [ephemeral] = emu.ephemerals("U_ALICE")
    assert ephemeral["ts"] == answer["message_ts"]
    assert ephemeral["thread_ts"] == ts


def test_wait_for_wakes_on_change(client: WebClient, emu: SlackEmulator) -> None:
    with pytest.raises(TimeoutError, match="nothing"):
        emu.wait_for(lambda: emu.messages("C_GENERAL"), timeout=0.05, what="nothing")
    client.chat_postMessage(channel="C_GENERAL", text="PR: https://example.test/pr/1")
    found = emu.wait_for_message("C_GENERAL", "example.test/pr/1")
    assert found["user"] == "U_BOT"
