"""``agents demo``: the whole product on one machine, headless and in a real browser."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from cli.commands.demo import DEMO_COMMENT

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
    assert "forge: the fake GitHub at http://127.0.0.1:" in out
    thread = out.split("--- the thread, as Slack shows it ---")[1]
    # The ack (status message), the progress checklist, the PR link, the approval, and
    # the merge GitHub's webhook reported.
    assert ":tada: merged" in thread
    assert ":white_check_mark: publish" in thread
    assert "turns 6/40" in thread  # the builder's 5 and the reviewer's 1: one budget
    assert re.search(
        r":rocket: Pull request opened: <http://127\.0\.0\.1:\d+/acme/retrying/pull/1\|", thread
    )
    assert "[Approve] [Rework] [Cancel]" in thread
    assert "approved by <@U_ALICE>" in thread
    assert "pull request merged on GitHub by @agents-bot" in thread
    assert "was merged into acme/retrying on the fake GitHub" in out


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
    # The rest of its output goes to a file, read as it comes: a pipe nobody reads
    # fills (64 KiB) and then blocks the demo at its next log line, mid-test. The file
    # is also what to read when the test fails.
    ARTIFACTS.mkdir(exist_ok=True)
    drain = threading.Thread(
        target=_copy, args=(proc.stdout, ARTIFACTS / "demo-browser.log"), daemon=True
    )
    drain.start()
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
        drain.join(timeout=10)
        proc.stdout.close()


def _copy(lines: Iterable[str], path: Path) -> None:
    with path.open("w") as out:
        for line in lines:
            out.write(line)
            out.flush()


@pytest.mark.browser
@pytest.mark.docker
@pytest.mark.slow
def test_browser_mention_pr_page_comment_rework_approve(served_demo: str) -> None:
    """A mention opens a PR; the thread's link opens the PR's page on the fake GitHub; a
    comment ``@agents ...`` there goes to the bot as GitHub's signed webhook and the
    thread shows the second iteration; Approve merges it."""
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
            expect(page.get_by_test_id("button-agents_approve").last).to_be_visible(timeout=60_000)

            # The thread's link to the pull request opens its page (a new tab).
            link = page.get_by_test_id("link").filter(has_text="/acme/retrying/pull/1").first
            with page.context.expect_page() as opened:
                link.click()
            pr = opened.value
            pr.on("pageerror", lambda exc: errors.append(str(exc)))
            pr.wait_for_load_state()
            expect(pr.get_by_test_id("pr-title")).to_contain_text("#1")
            expect(pr.get_by_test_id("pr-file").first).to_be_visible()
            expect(pr.get_by_text("retrying/retry.py").first).to_be_visible()
            expect(pr.get_by_test_id("pr-state")).to_have_text("draft")
            pr.get_by_test_id("pr-comment-input").fill(DEMO_COMMENT)
            pr.get_by_test_id("pr-comment-submit").click()
            expect(pr.get_by_test_id("pr-conversation")).to_contain_text(DEMO_COMMENT)

            # GitHub's webhook reaches the bot: the rework, then the second iteration.
            expect(page.get_by_text("rework requested on GitHub by @octocat").first).to_be_visible(
                timeout=60_000
            )
            expect(page.get_by_text("iteration 2").first).to_be_visible(timeout=180_000)
            expect(page.get_by_text("#1 is ready for review")).to_have_count(2, timeout=180_000)
            # The answer goes to the PR too, right after the thread's (the page is
            # static: reload until it is there).
            for _ in range(60):
                pr.reload()
                if "Iteration 2 is pushed" in pr.get_by_test_id("pr-conversation").inner_text():
                    break
                pr.wait_for_timeout(500)
            expect(pr.get_by_test_id("pr-conversation")).to_contain_text("Iteration 2 is pushed")
            expect(pr.get_by_text("CHANGELOG.md").first).to_be_visible()
            pr.screenshot(path=str(ARTIFACTS / "demo-pr-page.png"), full_page=True)

            approve = page.get_by_test_id("button-agents_approve").last
            approve.click()
            expect(page.get_by_text("approved by").first).to_be_visible(timeout=120_000)
            page.screenshot(path=str(ARTIFACTS / "demo-approved.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()
    assert (ARTIFACTS / "demo-approved.png").stat().st_size > 10_000
