"""The web page's endpoints, and (with ``-m browser``) the page itself in Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from typing import Any

import pytest
from slack_sdk import WebClient

from fakes.slack import SlackEmulator
from tests.fakes.slack.conftest import TinyBot
from tests.fakes.slack.tinybot import RecordingBot

Json = dict[str, Any]


def get(emu: SlackEmulator, path: str) -> tuple[int, str, str]:
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        with opener.open(f"{emu.url}{path}", timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers.get("Location", ""), ""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def ui(emu: SlackEmulator, path: str, body: Json) -> Json:
    request = urllib.request.Request(  # noqa: S310
        f"{emu.url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            answer: Json = json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            answer = json.load(exc)
    return answer


def state(emu: SlackEmulator, user: str = "U_ALICE", since: int | None = None) -> Json:
    query = f"?user={user}" + (f"&since={since}" if since is not None else "")
    _, _, body = get(emu, f"/ui/state{query}")
    parsed: Json = json.loads(body)
    return parsed


def test_the_page_and_its_assets_are_served(emu: SlackEmulator) -> None:
    status, content_type, html = get(emu, "/")
    assert status == 200
    assert content_type.startswith("text/html")
    for testid in ("composer-input", "composer-send", "user-select", "messages", "channel-title"):
        assert f'data-testid="{testid}"' in html
    assert get(emu, "/static/app.js")[0] == 200
    assert get(emu, "/static/app.css")[1].startswith("text/css")
    assert get(emu, "/static/../server.py")[0] == 404


def test_composer_posts_a_mention_as_a_client_would(
    emu: SlackEmulator, recorder: RecordingBot
) -> None:
    answer = ui(
        emu,
        "/ui/post",
        {
            "user": "U_ALICE",
            "channel": "C_GENERAL",
            "text": "@agents fix <b> & see https://x.test/a",
        },
    )
    assert answer["ok"] is True
    assert answer["delivered"] == 2  # app_mention and message
    text = "<@U_BOT> fix &lt;b&gt; &amp; see <https://x.test/a>"
    assert emu.messages("C_GENERAL")[0]["text"] == text
    mention = recorder.payloads()[0]["event"]
    assert mention["type"] == "app_mention"
    assert mention["text"] == text
    page = state(emu)
    assert page["messages"]["C_GENERAL"][0]["ts"] == answer["ts"]
    assert page["me"] == "U_ALICE"


def test_composer_replies_in_a_thread(emu: SlackEmulator, recorder: RecordingBot) -> None:
    root = ui(emu, "/ui/post", {"user": "U_ALICE", "channel": "C_GENERAL", "text": "root"})
    ui(
        emu,
        "/ui/post",
        {"user": "U_BOB", "channel": "C_GENERAL", "text": "reply", "thread_ts": root["ts"]},
    )
    page = state(emu)
    [top] = page["messages"]["C_GENERAL"]
    assert [r["text"] for r in top["replies"]] == ["reply"]


def test_state_polling_reports_unchanged(emu: SlackEmulator) -> None:
    first = state(emu)
    assert state(emu, since=first["version"]) == {"version": first["version"], "unchanged": True}
    WebClient(token=emu.bot_token, base_url=emu.api_url).chat_postMessage(
        channel="C_GENERAL", text="news"
    )
    assert state(emu, since=first["version"])["messages"]["C_GENERAL"][0]["text"] == "news"
    assert state(emu)["bot_connected"] is False


def test_click_from_the_page_delivers_block_actions(
    emu: SlackEmulator, recorder: RecordingBot
) -> None:
    client = WebClient(token=emu.bot_token, base_url=emu.api_url)
    ts = client.chat_postMessage(
        channel="C_GENERAL",
        text="run #1",
        blocks=[
            {
                "type": "actions",
                "block_id": "run_actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "action_id": "approve",
                        "value": "1",
                    }
                ],
            }
        ],
    )["ts"]
    answer = ui(
        emu,
        "/ui/click",
        {"user": "U_BOB", "channel": "C_GENERAL", "ts": ts, "action_id": "approve"},
    )
    assert answer == {"ok": True, "status": 200}
    payload = recorder.payloads()[-1]
    assert recorder.received[-1].signature_ok
    assert recorder.received[-1].headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "U_BOB"
    assert payload["actions"][0]["action_id"] == "approve"
    assert payload["actions"][0]["value"] == "1"
    bad = ui(
        emu, "/ui/click", {"user": "U_BOB", "channel": "C_GENERAL", "ts": ts, "action_id": "x"}
    )
    assert bad["ok"] is False
    assert "action_id" in bad["error"]


def test_slash_commands_from_the_composer(emu: SlackEmulator, tinybot: TinyBot) -> None:
    answer = ui(
        emu, "/ui/post", {"user": "U_ALICE", "channel": "C_GENERAL", "text": "/agents status"}
    )
    assert answer["ok"] is True
    assert tinybot.log.commands[0]["text"] == "status"
    assert [e["text"] for e in state(emu)["ephemerals"]] == ["1 running, 0 queued"]
    assert state(emu, user="U_BOB")["ephemerals"] == []

    unknown = ui(emu, "/ui/post", {"user": "U_ALICE", "channel": "C_GENERAL", "text": "/deploy"})
    assert unknown == {"ok": False, "error": "unknown_command"}
    assert "not a valid command" in state(emu)["ephemerals"][-1]["text"]
    assert state(emu)["ephemerals"][-1]["user"] == "USLACKBOT"


def test_modal_errors_round_trip_through_the_page(emu: SlackEmulator, tinybot: TinyBot) -> None:
    ts, _ = emu.mention("U_ALICE", "C_GENERAL", "go")
    reply = emu.wait_for(lambda: emu.thread("C_GENERAL", ts)[1:])[0]
    ui(
        emu,
        "/ui/click",
        {"user": "U_ALICE", "channel": "C_GENERAL", "ts": reply["ts"], "action_id": "rework"},
    )
    emu.wait_for(lambda: emu.modal("U_ALICE"))
    modal = state(emu)["modal"]
    view_id = modal["view"]["id"]
    assert modal["errors"] == {}

    empty = ui(
        emu, "/ui/submit", {"user": "U_ALICE", "view_id": view_id, "values": {"feedback": {}}}
    )
    assert empty == {"ok": False, "errors": {"feedback": "Please complete this required field."}}

    short = {"feedback": {"text": "no"}}
    answer = ui(emu, "/ui/submit", {"user": "U_ALICE", "view_id": view_id, "values": short})
    assert answer["answer"]["response_action"] == "errors"
    assert state(emu)["modal"]["errors"] == {"feedback": "Say a little more (5+ characters)."}

    good = {"feedback": {"text": "Please use a setting."}}
    ui(emu, "/ui/submit", {"user": "U_ALICE", "view_id": view_id, "values": good})
    assert state(emu)["modal"] is None


def test_permalinks_lead_to_the_page(emu: SlackEmulator) -> None:
    status, location, _ = get(emu, "/archives/C_GENERAL/p1700000000000100")
    assert status == 302
    assert location == "/?channel=C_GENERAL&ts=1700000000.000100"


# -- the page in a real browser ------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(url: str) -> str:
    """The page's DOM after its scripts ran (headless Chromium, virtual time)."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=3000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    return result.stdout


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install -y chromium)")
def test_the_page_renders_block_kit_and_mrkdwn_safely(emu: SlackEmulator) -> None:
    client = WebClient(token=emu.bot_token, base_url=emu.api_url)
    ts = client.chat_postMessage(
        channel="C_GENERAL",
        text="run",
        blocks=[
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*bold* _it_ `code` <https://x.test/pr/7|PR #7> <@U_ALICE> "
                    "&lt;script&gt;alert(1)&lt;/script&gt; <javascript:alert(1)|bad>",
                },
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "iteration 1"}]},
            {"type": "divider"},
            {
                "type": "actions",
                "block_id": "run_actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "action_id": "approve",
                        "style": "primary",
                        "value": "1",
                    }
                ],
            },
        ],
    )["ts"]
    client.reactions_add(channel="C_GENERAL", timestamp=ts, name="eyes")
    client.chat_postEphemeral(channel="C_GENERAL", user="U_ALICE", text="psst")
    dom = dump_dom(f"{emu.url}/?user=U_ALICE")

    assert f'data-testid="message" data-ts="{ts}"' in dom
    assert "<b>bold</b>" in dom
    assert "<i>it</i>" in dom
    assert "<code>code</code>" in dom
    assert 'href="https://x.test/pr/7"' in dom
    assert ">PR #7</a>" in dom
    assert ">@alice</span>" in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # shown as text, not run
    assert 'href="javascript' not in dom
    assert 'data-testid="button-approve"' in dom
    assert 'data-block-type="divider"' in dom
    assert 'data-testid="reaction" data-name="eyes"' in dom
    assert 'data-testid="ephemeral"' in dom
    assert "Only visible to you" in dom
