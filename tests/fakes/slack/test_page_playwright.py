"""The page driven like a person would, with Playwright and Debian's Chromium.

Skips unless the ``playwright`` package and a ``chromium`` binary are installed
(``pip install playwright``; no browser download needed: it uses /usr/bin/chromium).
The bot here is the tiny bolt app; the selectors are the ones a test of the real
bot uses: ``composer-input``, ``button-<action_id>``, ``modal-input``, ``modal-error``...
"""

from __future__ import annotations

import shutil

import pytest

from fakes.slack import SlackEmulator
from tests.fakes.slack.conftest import TinyBot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install -y chromium)")
def test_mention_rework_modal_approve_and_status(emu: SlackEmulator, tinybot: TinyBot) -> None:
    expect = sync_api.expect
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{emu.url}/?user=U_ALICE")

            composer = page.get_by_test_id("composer-input")
            composer.fill("@agents in acme/api: make the retry limit configurable <b>&")
            composer.press("Enter")
            expect(page.get_by_test_id("button-approve")).to_be_visible()
            expect(page.locator("[data-testid=reaction][data-name=eyes]")).to_be_visible()
            typed = page.get_by_test_id("message-text").first
            expect(typed).to_contain_text("configurable <b>&")  # escaped, shown literally

            page.get_by_test_id("button-rework").click()
            modal = page.get_by_test_id("modal")
            expect(modal).to_be_visible()
            page.get_by_test_id("modal-input").fill("no")
            page.get_by_test_id("modal-submit").click()
            error = page.get_by_test_id("modal-error")
            expect(error).to_have_text("Say a little more (5+ characters).")
            expect(page.get_by_test_id("modal-input")).to_have_value("no")
            page.get_by_test_id("modal-input").fill("Read it from a setting.")
            page.get_by_test_id("modal-submit").click()
            expect(modal).to_be_hidden()
            expect(page.get_by_text("Rework requested: Read it from a setting.")).to_be_visible()

            page.get_by_test_id("button-approve").click()
            expect(page.get_by_test_id("button-approve")).to_have_count(0)
            approved = page.get_by_test_id("ephemeral").filter(has_text="You approved #1.")
            expect(approved).to_be_visible()
            expect(approved.get_by_test_id("ephemeral-label")).to_have_text("👁 Only visible to you")

            composer.fill("/agents status")
            page.get_by_test_id("composer-send").click()
            status = page.get_by_test_id("ephemeral").filter(has_text="1 running, 0 queued")
            expect(status).to_be_visible()

            page.get_by_test_id("user-select").select_option("U_BOB")
            expect(page.get_by_test_id("ephemeral")).to_have_count(0)
            assert errors == []
        finally:
            browser.close()
    assert emu.warnings == []


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install -y chromium)")
def test_a_message_sent_before_the_page_has_loaded_goes_out_once_it_has(
    emu: SlackEmulator, tinybot: TinyBot
) -> None:
    """On a slow machine the first state can come after the user pressed Enter: the
    message waits for it, and is not silently dropped."""
    expect = sync_api.expect
    refused = []

    def first_polls_fail(route: sync_api.Route) -> None:
        if len(refused) < 4:  # about a second and a half at the page's poll interval
            refused.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.route("**/ui/state*", first_polls_fail)
            page.goto(f"{emu.url}/?user=U_ALICE")
            composer = page.get_by_test_id("composer-input")
            composer.fill("@agents in acme/api: make the retry limit configurable")
            composer.press("Enter")
            expect(page.get_by_test_id("composer-error")).to_contain_text("connecting")
            expect(page.get_by_test_id("button-approve")).to_be_visible()
            expect(composer).to_have_value("")
            assert len(refused) == 4
        finally:
            browser.close()
