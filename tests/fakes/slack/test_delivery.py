"""Events reach the bot signed for real, and Slack's retries can be replayed."""

from __future__ import annotations

import json

import pytest
from slack_sdk.signature import SignatureVerifier

from fakes.slack import SlackEmulator, sign
from tests.fakes.slack.tinybot import Answer, RecordingBot


def test_sign_matches_slack_sdk() -> None:
    verifier = SignatureVerifier("secret")
    body = '{"type":"event_callback"}'
    signature = sign("secret", "1700000000", body)
    assert verifier.generate_signature(timestamp="1700000000", body=body) == signature


def test_mention_delivers_signed_app_mention_and_message(
    emu: SlackEmulator, recorder: RecordingBot
) -> None:
    ts, delivery = emu.mention("U_ALICE", "C_GENERAL", "@agents in acme/api: fix <it> & that")
    assert delivery.ok
    assert delivery.event_type == "app_mention"
    assert len(recorder.received) == 2
    assert all(r.signature_ok for r in recorder.received)
    assert all(r.headers["Content-Type"] == "application/json" for r in recorder.received)
    mention, message = recorder.payloads()
    assert mention["type"] == "event_callback"
    assert mention["team_id"] == emu.team_id
    assert mention["authorizations"][0]["user_id"] == "U_BOT"
    assert mention["event_id"] != message["event_id"]
    event = mention["event"]
    assert event["type"] == "app_mention"
    assert event["text"] == "<@U_BOT> in acme/api: fix <it> & that"  # wire format, as given
    assert event["user"] == "U_ALICE"
    assert event["channel"] == "C_GENERAL"
    assert event["ts"] == event["event_ts"] == ts
    assert event["blocks"][0]["type"] == "rich_text"
    assert "thread_ts" not in event
    assert message["event"]["type"] == "message"
    assert message["event"]["channel_type"] == "channel"
    assert emu.messages("C_GENERAL")[0]["text"] == event["text"]


def test_a_reply_in_a_thread_carries_thread_ts(emu: SlackEmulator, recorder: RecordingBot) -> None:
    root, _ = emu.post("U_ALICE", "C_GENERAL", "hello")
    emu.mention("U_BOB", "C_GENERAL", "please look", thread_ts=root)
    event = recorder.payloads()[-2]["event"]
    assert event["type"] == "app_mention"
    assert event["thread_ts"] == root
    assert event["parent_user_id"] == "U_ALICE"
    assert event["text"].startswith("<@U_BOT> ")


def test_dm_delivers_message_im_only(emu: SlackEmulator, recorder: RecordingBot) -> None:
    channel = emu.dm("U_ALICE")
    _, deliveries = emu.post("U_ALICE", channel, "status please")
    assert [d.event_type for d in deliveries] == ["message"]
    event = recorder.payloads()[0]["event"]
    assert event["channel_type"] == "im"
    assert event["channel"] == channel
    with pytest.raises(ValueError, match="DMs"):
        emu.mention("U_ALICE", channel, "hi")


def test_subscriptions_decide_what_is_delivered(emu: SlackEmulator, recorder: RecordingBot) -> None:
    emu.subscriptions = {"app_mention"}
    _, deliveries = emu.post("U_ALICE", "C_GENERAL", "no mention here")
    assert deliveries == []
    _, delivery = emu.mention("U_ALICE", "C_GENERAL", "hi")
    assert [p["event"]["type"] for p in recorder.payloads()] == ["app_mention"]
    assert delivery.ok


def test_redelivery_repeats_the_event_with_retry_headers(
    emu: SlackEmulator, recorder: RecordingBot
) -> None:
    _, first = emu.mention("U_ALICE", "C_GENERAL", "once")
    assert first.event_id is not None
    again = emu.redeliver(first.event_id, retry_num=1)
    third = emu.redeliver(first.event_id, retry_num=2, reason="http_error")
    retried = recorder.received[-2:]
    assert [json.loads(r.body)["event_id"] for r in retried] == [first.event_id] * 2
    assert retried[0].body == first.body
    assert [r.headers["X-Slack-Retry-Num"] for r in retried] == ["1", "2"]
    assert [r.headers["X-Slack-Retry-Reason"] for r in retried] == ["http_timeout", "http_error"]
    assert all(r.signature_ok for r in retried)
    assert "X-Slack-Retry-Num" not in recorder.received[0].headers
    assert again.retry_num == 1
    assert third.retry_num == 2
    with pytest.raises(LookupError):
        emu.redeliver("EvNOPE")


def test_a_failing_or_slow_bot_is_a_warning(emu: SlackEmulator, recorder: RecordingBot) -> None:
    recorder.respond = lambda r: Answer(status=500, body="boom", content_type="text/plain")
    _, delivery = emu.mention("U_ALICE", "C_GENERAL", "hi")
    assert delivery.status == 500
    assert delivery.response_body == "boom"
    assert any("HTTP 500" in w for w in emu.warnings)


def test_an_unreachable_bot_is_a_warning(emu: SlackEmulator) -> None:
    emu.bot_url = "http://127.0.0.1:9/slack/events"  # discard port: nothing listens
    _, delivery = emu.mention("U_ALICE", "C_GENERAL", "hi")
    assert delivery.status is None
    assert delivery.error
    assert any("could not reach the bot" in w for w in emu.warnings)


def test_custom_events_and_app_home(emu: SlackEmulator, recorder: RecordingBot) -> None:
    delivery = emu.send_event({"type": "reaction_added", "user": "U_ALICE", "reaction": "eyes"})
    assert delivery.ok
    home = emu.app_home_opened("U_ALICE")
    assert home.event_type == "app_home_opened"
    payload = recorder.payloads()[-1]
    assert payload["event"]["tab"] == "home"
    assert payload["event"]["channel"] == emu.dm("U_ALICE")


def test_tampered_signature_fails_verification(emu: SlackEmulator, recorder: RecordingBot) -> None:
    """The recorder's verifier really checks: a request signed with another secret fails."""
    emu.signing_secret = "another-secret"
    emu.mention("U_ALICE", "C_GENERAL", "hi")
    assert recorder.received
    assert not any(r.signature_ok for r in recorder.received)
