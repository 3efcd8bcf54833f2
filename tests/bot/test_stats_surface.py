"""The stats where users look: the estimate in a new run's status message (only with
enough history), ``/agents stats``, and the App Home's figures for the user's
repositories."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from runs.outcomes import OutcomeStore, RunOutcome
from runs.record import RunStatus, utcnow
from tests.bot.conftest import ALICE, BOB, GENERAL, Harness

pytestmark = pytest.mark.redis


def seed(h: Harness, count: int, *, repo: str = "acme/api", start: int = 1) -> None:
    now = utcnow()
    store = OutcomeStore(h.services.connection, prefix=h.services.store.prefix)
    for n in range(start, start + count):
        created = now - timedelta(hours=n)
        store.save(
            RunOutcome(
                run_id=1000 + n,
                repo=repo,
                requester=ALICE,
                channel=GENERAL,
                created_at=created,
                status=RunStatus.APPROVED,
                dollars=1.0 + n / 10,
                pr_number=n,
                pr_url=f"https://example.com/pr/{n}",
                pr_opened_at=created + timedelta(minutes=6 + n),
                merged=n % 2 == 1,
            )
        )


def status_text(h: Harness, text: str) -> str:
    ts, _ = h.emu.mention(ALICE, GENERAL, text)
    h.settle()
    run = h.services.store.find_by_thread(GENERAL, ts)
    assert run is not None
    (status,) = [m for m in h.emu.thread(GENERAL, ts) if m["ts"] == run.status_ts]
    return json.dumps(status["blocks"])


def test_the_estimate_appears_once_five_runs_have_finished_there(harness: Harness) -> None:
    h = harness
    seed(h, 4)
    assert "usually" not in status_text(h, "in acme/api: make the retry limit configurable")
    seed(h, 1, start=5)
    shown = status_text(h, "in acme/api: add a changelog")
    # Medians of 7..11 minutes and $1.10..$1.50.
    assert "usually ~9 min, ~$1.30 (the median of the last 5 runs here)" in shown
    assert "usually" not in status_text(h, "in acme/web: add a changelog")


def test_agents_stats_and_the_app_home_show_the_figures(harness: Harness) -> None:
    h = harness
    seed(h, 5)
    h.emu.slash(BOB, GENERAL, "/agents", "stats acme/api 30d")
    h.emu.slash(BOB, GENERAL, "/agents", "stats 2y")
    h.emu.app_home_opened(ALICE)
    h.settle()
    stats, bad = (json.dumps(m["blocks"], ensure_ascii=False) for m in h.emu.ephemerals(BOB)[-2:])
    assert "*acme/api*" in stats
    assert "runs: 5 · PRs opened: 5 · merged: 3 · merged rate: 60%" in stats
    assert "cost per merged PR: $2.17" in stats  # $6.50 over 3 merged
    assert "`2y` is neither a repository" in bad
    home = h.emu.home(ALICE)
    assert home is not None
    assert "*Your repositories*" in json.dumps(home["blocks"], ensure_ascii=False)
    assert "merged rate: 60%" in json.dumps(home["blocks"], ensure_ascii=False)
