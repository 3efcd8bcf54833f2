"""What the thread says of a run's environment: waiting, building, built or reused."""

from __future__ import annotations

from datetime import timedelta

from bot.blocks import run_message
from runs.projection import describe_environment, project, render_text
from runs.record import EnvironmentUse, Run, utcnow

KEY = "3f2a9c1d7e4b" + "0" * 52


def test_each_outcome_has_its_line() -> None:
    now = utcnow()
    waiting = EnvironmentUse(
        key=KEY, outcome="waiting", since=now - timedelta(seconds=12), expected_seconds=45
    )
    assert describe_environment(waiting, now) == (
        "waiting for environment 3f2a9c1d7e4b, which another run is building "
        "(started 12 s ago; the last build took 45 s)"
    )
    building = EnvironmentUse(key=KEY, outcome="building")
    assert describe_environment(building, now) == (
        "building environment 3f2a9c1d7e4b (no earlier build to go by)"
    )
    built = EnvironmentUse(key=KEY, outcome="built", build_seconds=42.0, sandboxes=2)
    assert (
        describe_environment(built, now) == "environment 3f2a9c1d7e4b built in 42 s (2 sandboxes)"
    )
    reused = EnvironmentUse(
        key=KEY,
        outcome="reused",
        built_at=now - timedelta(hours=3),
        sandboxes=3,
        from_pool=2,
        updates=1,
    )
    assert describe_environment(reused, now) == (
        "environment 3f2a9c1d7e4b reused (built 3 h ago; 3 sandboxes, 2 from the warm pool, "
        "updated 1x)"
    )
    assert describe_environment(None, now) is None


def test_the_text_view_and_the_slack_message_show_it() -> None:
    run = Run(id=4, requester="U1", repo="acme/api", request="x")
    run.artifacts.environment = EnvironmentUse(key=KEY, outcome="reused", sandboxes=1)
    view = project(run, [])
    assert "  environment 3f2a9c1d7e4b reused (1 sandbox)" in render_text(view).splitlines()
    _, blocks = run_message(view)
    texts = [str(e.get("text")) for b in blocks for e in b.get("elements", [])]
    assert ":package: environment 3f2a9c1d7e4b reused (1 sandbox)" in texts
