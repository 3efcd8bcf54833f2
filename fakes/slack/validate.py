"""Block Kit validation with Slack's limits, so bad blocks fail here as they would in Slack.

Errors read like Slack's ``response_metadata.messages``:
``[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]``.
The checks cover what a bot plausibly gets wrong: unknown block or element types,
missing required fields, wrong text-object types, lengths and counts over the limits,
duplicate ``block_id``\\ s and duplicate ``action_id``\\ s within a block.
"""

from __future__ import annotations

from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_BLOCK_ID = 255
MAX_ACTION_ID = 255
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
MAX_MARKDOWN_BLOCK_TEXT = 12000
MAX_MESSAGE_TEXT = 40000
MAX_VIEW_TITLE = 24
MAX_PRIVATE_METADATA = 3000
MAX_CALLBACK_ID = 255

MESSAGE_BLOCK_TYPES = frozenset(
    {
        "section",
        "divider",
        "image",
        "actions",
        "context",
        "input",
        "file",
        "header",
        "video",
        "rich_text",
        "markdown",
    }
)
VIEW_BLOCK_TYPES = frozenset(
    {"section", "divider", "image", "actions", "context", "input", "header", "video", "rich_text"}
)

_SELECTS = frozenset(
    {
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
    }
)
ACTION_ELEMENTS = _SELECTS | {
    "button",
    "overflow",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "checkboxes",
    "radio_buttons",
    "workflow_button",
    "rich_text_input",
}
INPUT_ELEMENTS = _SELECTS | {
    "plain_text_input",
    "rich_text_input",
    "email_text_input",
    "url_text_input",
    "number_input",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "checkboxes",
    "radio_buttons",
    "file_input",
}
ACCESSORY_ELEMENTS = _SELECTS | {
    "button",
    "overflow",
    "datepicker",
    "timepicker",
    "checkboxes",
    "radio_buttons",
    "image",
    "workflow_button",
}


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, pointer: str, message: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    # -- primitives ------------------------------------------------------------------

    def string(
        self, obj: dict[str, Any], key: str, ptr: str, *, limit: int, required: bool = False
    ) -> str | None:
        if key not in obj or obj[key] is None:
            if required:
                self.error(f"{ptr}/{key}", "missing required field")
            return None
        value = obj[key]
        if not isinstance(value, str):
            self.error(f"{ptr}/{key}", "must be a string")
            return None
        if len(value) > limit:
            self.error(f"{ptr}/{key}", f"must be less than {limit + 1} characters")
        return value

    def text(
        self,
        value: Any,
        ptr: str,
        *,
        limit: int,
        plain_only: bool = False,
        allow_empty: bool = False,
    ) -> None:
        if not isinstance(value, dict):
            self.error(ptr, "must be a text object")
            return
        kind = value.get("type")
        if kind not in ("plain_text", "mrkdwn"):
            self.error(f"{ptr}/type", "must be one of plain_text, mrkdwn")
            return
        if plain_only and kind != "plain_text":
            self.error(f"{ptr}/type", "must be plain_text")
        text = value.get("text")
        if not isinstance(text, str):
            self.error(
                f"{ptr}/text", "missing required field" if text is None else "must be a string"
            )
            return
        if not text and not allow_empty:
            self.error(f"{ptr}/text", "must be more than 0 characters")
        if len(text) > limit:
            self.error(f"{ptr}/text", f"must be less than {limit + 1} characters")
        if "emoji" in value and not isinstance(value["emoji"], bool):
            self.error(f"{ptr}/emoji", "must be a boolean")
        if "verbatim" in value and kind != "mrkdwn":
            self.error(f"{ptr}/verbatim", "only allowed in mrkdwn text objects")

    def action_id(self, element: dict[str, Any], ptr: str, seen: set[str] | None) -> None:
        action_id = self.string(element, "action_id", ptr, limit=MAX_ACTION_ID)
        if action_id is not None and seen is not None:
            if action_id in seen:
                self.error(f"{ptr}/action_id", f"duplicate action_id {action_id!r} in block")
            seen.add(action_id)

    def options(self, element: dict[str, Any], ptr: str, *, maximum: int, key: str) -> None:
        options = element.get(key)
        if options is None:
            return
        if not isinstance(options, list) or not options:
            self.error(f"{ptr}/{key}", "must be a non-empty array")
            return
        if len(options) > maximum:
            self.error(f"{ptr}/{key}", f"no more than {maximum} items allowed")
        for i, option in enumerate(options):
            optr = f"{ptr}/{key}/{i}"
            if not isinstance(option, dict):
                self.error(optr, "must be an option object")
                continue
            self.text(option.get("text"), f"{optr}/text", limit=75)
            self.string(option, "value", optr, limit=150, required=key == "options")
            if "description" in option:
                self.text(option["description"], f"{optr}/description", limit=75)
            if "url" in option:
                self.string(option, "url", optr, limit=MAX_URL)

    def confirm(self, value: Any, ptr: str) -> None:
        if not isinstance(value, dict):
            self.error(ptr, "must be a confirmation dialog object")
            return
        self.text(value.get("title"), f"{ptr}/title", limit=100, plain_only=True)
        self.text(value.get("text"), f"{ptr}/text", limit=300)
        self.text(value.get("confirm"), f"{ptr}/confirm", limit=30, plain_only=True)
        self.text(value.get("deny"), f"{ptr}/deny", limit=30, plain_only=True)
        if value.get("style") not in (None, "primary", "danger"):
            self.error(f"{ptr}/style", "must be one of primary, danger")

    # -- elements --------------------------------------------------------------------

    def element(
        self, element: Any, ptr: str, *, allowed: frozenset[str], seen: set[str] | None
    ) -> None:
        if not isinstance(element, dict):
            self.error(ptr, "must be an object")
            return
        kind = element.get("type")
        if not isinstance(kind, str) or kind not in allowed:
            self.error(ptr, f"failed to match all allowed schemas (element type {kind!r})")
            return
        if kind == "image":
            if "image_url" not in element and "slack_file" not in element:
                self.error(f"{ptr}/image_url", "missing required field")
            self.string(element, "image_url", ptr, limit=MAX_URL)
            self.string(element, "alt_text", ptr, limit=2000, required=True)
            return
        self.action_id(element, ptr, seen)
        if "confirm" in element:
            self.confirm(element["confirm"], f"{ptr}/confirm")
        if kind == "button":
            self.text(element.get("text"), f"{ptr}/text", limit=MAX_BUTTON_TEXT, plain_only=True)
            self.string(element, "value", ptr, limit=MAX_BUTTON_VALUE)
            self.string(element, "url", ptr, limit=MAX_URL)
            self.string(element, "accessibility_label", ptr, limit=75)
            if element.get("style") not in (None, "primary", "danger"):
                self.error(f"{ptr}/style", "must be one of primary, danger")
        elif kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
            if "placeholder" in element:
                self.text(element["placeholder"], f"{ptr}/placeholder", limit=150, plain_only=True)
            if "initial_value" in element and not isinstance(element["initial_value"], str):
                self.error(f"{ptr}/initial_value", "must be a string")
            if "multiline" in element and not isinstance(element["multiline"], bool):
                self.error(f"{ptr}/multiline", "must be a boolean")
            for key in ("min_length", "max_length"):
                if key in element:
                    n = element[key]
                    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 3000:
                        self.error(f"{ptr}/{key}", "must be an integer between 0 and 3000")
        elif kind in _SELECTS or kind in ("overflow", "checkboxes", "radio_buttons"):
            if "placeholder" in element:
                self.text(element["placeholder"], f"{ptr}/placeholder", limit=150, plain_only=True)
            if kind == "overflow":
                if not element.get("options"):
                    self.error(f"{ptr}/options", "missing required field")
                self.options(element, ptr, maximum=5, key="options")
            elif kind == "static_select" or kind == "multi_static_select":
                if "options" not in element and "option_groups" not in element:
                    self.error(f"{ptr}/options", "missing required field")
                self.options(element, ptr, maximum=100, key="options")
            else:
                self.options(element, ptr, maximum=10, key="options")

    # -- blocks ----------------------------------------------------------------------

    def block(self, block: Any, ptr: str, *, allowed: frozenset[str], block_ids: set[str]) -> None:
        if not isinstance(block, dict):
            self.error(ptr, "must be an object")
            return
        kind = block.get("type")
        if not isinstance(kind, str) or kind not in allowed:
            self.error(ptr, f"failed to match all allowed schemas (block type {kind!r})")
            return
        block_id = self.string(block, "block_id", ptr, limit=MAX_BLOCK_ID)
        if block_id is not None:
            if block_id in block_ids:
                self.error(f"{ptr}/block_id", f"duplicate block_id {block_id!r}")
            block_ids.add(block_id)
        check = getattr(self, f"block_{kind}", None)
        if check is not None:
            check(block, ptr)

    def block_section(self, block: dict[str, Any], ptr: str) -> None:
        if "text" not in block and "fields" not in block:
            self.error(f"{ptr}/text", "must provide text or fields")
        if "text" in block:
            self.text(block["text"], f"{ptr}/text", limit=MAX_SECTION_TEXT)
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list) or not fields:
                self.error(f"{ptr}/fields", "must be a non-empty array")
            else:
                if len(fields) > MAX_SECTION_FIELDS:
                    self.error(f"{ptr}/fields", f"no more than {MAX_SECTION_FIELDS} items allowed")
                for i, item in enumerate(fields):
                    self.text(item, f"{ptr}/fields/{i}", limit=MAX_FIELD_TEXT)
        if "accessory" in block:
            self.element(
                block["accessory"], f"{ptr}/accessory", allowed=ACCESSORY_ELEMENTS, seen=set()
            )

    def block_header(self, block: dict[str, Any], ptr: str) -> None:
        self.text(block.get("text"), f"{ptr}/text", limit=MAX_HEADER_TEXT, plain_only=True)

    def block_context(self, block: dict[str, Any], ptr: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            self.error(f"{ptr}/elements", "must be a non-empty array")
            return
        if len(elements) > MAX_CONTEXT_ELEMENTS:
            self.error(f"{ptr}/elements", f"no more than {MAX_CONTEXT_ELEMENTS} items allowed")
        for i, element in enumerate(elements):
            eptr = f"{ptr}/elements/{i}"
            if isinstance(element, dict) and element.get("type") == "image":
                self.element(element, eptr, allowed=frozenset({"image"}), seen=None)
            else:
                self.text(element, eptr, limit=MAX_SECTION_TEXT)

    def block_actions(self, block: dict[str, Any], ptr: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            self.error(f"{ptr}/elements", "must be a non-empty array")
            return
        if len(elements) > MAX_ACTIONS_ELEMENTS:
            self.error(f"{ptr}/elements", f"no more than {MAX_ACTIONS_ELEMENTS} items allowed")
        seen: set[str] = set()
        for i, element in enumerate(elements):
            self.element(element, f"{ptr}/elements/{i}", allowed=ACTION_ELEMENTS, seen=seen)

    def block_image(self, block: dict[str, Any], ptr: str) -> None:
        if "image_url" not in block and "slack_file" not in block:
            self.error(f"{ptr}/image_url", "missing required field")
        self.string(block, "image_url", ptr, limit=MAX_URL)
        self.string(block, "alt_text", ptr, limit=2000, required=True)
        if "title" in block:
            self.text(block["title"], f"{ptr}/title", limit=2000, plain_only=True)

    def block_input(self, block: dict[str, Any], ptr: str) -> None:
        self.text(block.get("label"), f"{ptr}/label", limit=2000, plain_only=True)
        if "hint" in block:
            self.text(block["hint"], f"{ptr}/hint", limit=2000, plain_only=True)
        if "element" not in block:
            self.error(f"{ptr}/element", "missing required field")
        else:
            self.element(block["element"], f"{ptr}/element", allowed=INPUT_ELEMENTS, seen=set())
        for key in ("optional", "dispatch_action"):
            if key in block and not isinstance(block[key], bool):
                self.error(f"{ptr}/{key}", "must be a boolean")

    def block_rich_text(self, block: dict[str, Any], ptr: str) -> None:
        if not isinstance(block.get("elements"), list):
            self.error(f"{ptr}/elements", "missing required field")

    def block_markdown(self, block: dict[str, Any], ptr: str) -> None:
        self.string(block, "text", ptr, limit=MAX_MARKDOWN_BLOCK_TEXT, required=True)

    def block_file(self, block: dict[str, Any], ptr: str) -> None:
        self.string(block, "external_id", ptr, limit=255, required=True)
        self.string(block, "source", ptr, limit=255, required=True)

    def block_video(self, block: dict[str, Any], ptr: str) -> None:
        for key in ("alt_text", "thumbnail_url", "video_url"):
            self.string(block, key, ptr, limit=MAX_URL, required=True)
        self.text(block.get("title"), f"{ptr}/title", limit=200, plain_only=True)

    def blocks(
        self, blocks: Any, ptr: str, *, allowed: frozenset[str], maximum: int
    ) -> list[dict[str, Any]]:
        if not isinstance(blocks, list):
            self.error(ptr, "must be an array")
            return []
        if len(blocks) > maximum:
            self.error(ptr, f"no more than {maximum} items allowed")
        block_ids: set[str] = set()
        for i, block in enumerate(blocks):
            self.block(block, f"{ptr}/{i}", allowed=allowed, block_ids=block_ids)
        return [b for b in blocks if isinstance(b, dict)]


def validate_message_blocks(blocks: Any) -> list[str]:
    """Problems with a message's ``blocks``; empty when Slack would accept them."""
    checker = _Checker()
    checker.blocks(blocks, "/blocks", allowed=MESSAGE_BLOCK_TYPES, maximum=MAX_MESSAGE_BLOCKS)
    return checker.errors


def validate_view(view: Any, *, expected_type: str | None = None) -> list[str]:
    """Problems with a view (modal or home tab) for views.open / update / push / publish."""
    checker = _Checker()
    if not isinstance(view, dict):
        checker.error("/view", "must be an object")
        return checker.errors
    kind = view.get("type")
    if kind not in ("modal", "home"):
        checker.error("/view/type", "must be one of modal, home")
        return checker.errors
    if expected_type is not None and kind != expected_type:
        checker.error("/view/type", f"must be {expected_type}")
    blocks = checker.blocks(
        view.get("blocks"), "/view/blocks", allowed=VIEW_BLOCK_TYPES, maximum=MAX_VIEW_BLOCKS
    )
    if kind == "modal":
        checker.text(view.get("title"), "/view/title", limit=MAX_VIEW_TITLE, plain_only=True)
        for key in ("submit", "close"):
            if key in view and view[key] is not None:
                checker.text(view[key], f"/view/{key}", limit=MAX_VIEW_TITLE, plain_only=True)
        if any(b.get("type") == "input" for b in blocks) and not view.get("submit"):
            checker.error("/view/submit", "must provide submit when the view has input blocks")
    checker.string(view, "private_metadata", "/view", limit=MAX_PRIVATE_METADATA)
    checker.string(view, "callback_id", "/view", limit=MAX_CALLBACK_ID)
    checker.string(view, "external_id", "/view", limit=255)
    return checker.errors


def response_messages(errors: list[str]) -> list[str]:
    """Slack's ``response_metadata.messages`` form of validation errors."""
    return [f"[ERROR] {e}" for e in errors]
