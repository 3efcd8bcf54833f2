"""Block Kit validation limits and the client-side text conversion, as units."""

from __future__ import annotations

from fakes.slack.text import client_format, link_names, mentioned_users, rich_text_blocks
from fakes.slack.validate import validate_message_blocks, validate_view

USERS = {"agents": "U_BOT", "alice": "U_ALICE"}
CHANNELS = {"general": "C_GENERAL"}


def section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_a_good_message_passes() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Run #1"}},
        section("x" * 3000),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "a"}] * 10},
        {"type": "divider"},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "b" * 75},
                    "action_id": f"a{i}",
                    "value": "v" * 2000,
                }
                for i in range(25)
            ],
        },
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 10},
        {"type": "rich_text", "elements": []},
    ]
    assert validate_message_blocks(blocks) == []


def test_limits_are_reported_with_pointers() -> None:
    assert validate_message_blocks([section("x" * 3001)]) == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]
    too_many = {
        "type": "actions",
        "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "b"}, "action_id": f"a{i}"}
            for i in range(26)
        ],
    }
    assert validate_message_blocks([too_many]) == [
        "no more than 25 items allowed [json-pointer:/blocks/0/elements]"
    ]
    assert validate_message_blocks({"type": "section"}) == [
        "must be an array [json-pointer:/blocks]"
    ]


def test_modal_checks() -> None:
    rework = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Rework"},
        "blocks": [
            {
                "type": "input",
                "block_id": "feedback",
                "label": {"type": "plain_text", "text": "What should change?"},
                "element": {"type": "plain_text_input", "action_id": "t", "multiline": True},
            }
        ],
    }
    assert validate_view(rework) == [
        "must provide submit when the view has input blocks [json-pointer:/view/submit]"
    ]
    rework["submit"] = {"type": "plain_text", "text": "Send"}
    assert validate_view(rework) == []
    assert validate_view(rework, expected_type="home") == ["must be home [json-pointer:/view/type]"]
    rework["private_metadata"] = "m" * 3001
    assert validate_view(rework) == [
        "must be less than 3001 characters [json-pointer:/view/private_metadata]"
    ]


def test_client_format_escapes_and_links() -> None:
    typed = "@agents in acme/api: fix <b> & ping @alice in #general, see https://x.test/a?b=1."
    assert client_format(typed, USERS, CHANNELS) == (
        "<@U_BOT> in acme/api: fix &lt;b&gt; &amp; ping <@U_ALICE> in <#C_GENERAL|general>, "
        "see <https://x.test/a?b=1>."
    )
    assert client_format("mail bob@example.com @nobody @here", USERS, CHANNELS) == (
        "mail bob@example.com @nobody <!here>"
    )


def test_link_names_leaves_wire_format_alone() -> None:
    text = "<@U_BOT> hi @alice <https://x.test|@agents> &lt;b&gt;"
    assert link_names(text, USERS, CHANNELS) == (
        "<@U_BOT> hi <@U_ALICE> <https://x.test|@agents> &lt;b&gt;"
    )
    assert mentioned_users("<@U_BOT> and <@U_ALICE|alice> and <@U_BOT>") == ["U_BOT", "U_ALICE"]


def test_rich_text_blocks() -> None:
    [block] = rich_text_blocks("<@U_BOT> fix &lt;b&gt; <https://x.test|here>", "b1")
    elements = block["elements"][0]["elements"]
    assert elements == [
        {"type": "user", "user_id": "U_BOT"},
        {"type": "text", "text": " fix <b> "},
        {"type": "link", "url": "https://x.test", "text": "here"},
    ]
