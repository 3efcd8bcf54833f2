"""``agents demo``: the whole product on one machine, headless and in a real browser."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"


def demo_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGENTS_", "SLACK_", "ANTHROPIC_", "GITHUB_", "REDIS_"))
    }
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.mark.docker
@pytest.mark.slow
def test_headless_demo_prints_the_whole_thread() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "demo", "--headless", "--sandbox", "docker"],
        cwd=ROOT,
        env=demo_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "sandbox: docker" in out
    assert "model: REPLAY of a recorded transcript" in out
    thread = out.split("--- the thread, as Slack shows it ---")[1]
    # The ack (status message), the progress checklist, the PR link and the approval.
    assert ":white_check_mark: approved" in thread
    assert ":white_check_mark: publish" in thread
    assert "turns 6/40" in thread  # the builder's 5 and the reviewer's 1: one budget
    assert ":rocket: Pull request opened:" in thread
    assert "[Approve] [Rework] [Cancel]" in thread
    assert "approved by <@U_ALICE>" in thread
    assert "was merged into acme/retrying on the local forge" in out


@pytest.fixture
def served_demo() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "demo", "--sandbox", "docker"],
        cwd=ROOT,
        env=demo_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    url = None
    for line in proc.stdout:
        found = re.search(r"Open (http://127\.0\.0\.1:\d+)/", line)
        if found:
            url = found.group(1)
            break
    try:
        assert url is not None, "the demo never printed its URL"
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@pytest.mark.browser
@pytest.mark.docker
@pytest.mark.slow
def test_browser_mention_pr_approve(served_demo: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no chromium (apt-get install -y chromium)")
    expect = sync_api.expect
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{served_demo}/?user=U_ALICE")
            composer = page.get_by_test_id("composer-input")
            composer.fill("@agents make the retry limit configurable")
            composer.press("Enter")
            expect(page.get_by_text("Pull request opened")).to_be_visible(timeout=120_000)
            approve = page.get_by_test_id("button-agents_approve").last
            expect(approve).to_be_visible(timeout=60_000)
            approve.click()
            expect(page.get_by_text("approved by").first).to_be_visible(timeout=120_000)
            page.screenshot(path=str(ARTIFACTS / "demo-approved.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()
    assert (ARTIFACTS / "demo-approved.png").stat().st_size > 10_000
