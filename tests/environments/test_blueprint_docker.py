"""The blueprint on environments, real parts: every sandbox of a run (the agent's,
the base-commit re-run of the checks, a resumed job's, a rework's) starts from the one
environment built at prepare; setup never runs again unless the change touches a
dependency input."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs import recovery
from jobs.queue import RunQueue
from runs.events import ChecksRan, EnvironmentNoted, Prepared
from runs.projection import project, render_text
from runs.record import Run, RunStatus, Step
from tests.blueprint.conftest import FIX_ONCE_REQUEST, REPO, REWORK_FEEDBACK, script
from tests.environments.conftest import EnvHarness, agents_yml, env_repo

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow]

CHECKS = """checks:
  - python3 -m pytest -q
  - python3 -c "import iniconfig"
"""


class Crash(BaseException):
    """The worker dies here."""


def messages(
    harness: EnvHarness, run_id: int, kind: type[EnvironmentNoted] | type[Prepared]
) -> list[str]:
    return [e.text for e in harness.store.events(run_id) if isinstance(e, kind)]


def test_rework_resume_and_the_base_commit_rerun_reuse_the_environment(
    env_harness: EnvHarness, wheelhouse: Path
) -> None:
    from tests.environments.conftest import SETUP

    update = "echo updated >> /home/agent/update.log"
    source = env_repo(
        env_harness.root / "src",
        wheelhouse,
        extra={".agents.yml": agents_yml(SETUP, CHECKS, update=update)},
    )
    env_harness.forge.create_repo(REPO, source=source)
    env_harness.models.by_iteration = {1: script("fix-once"), 2: script("rework")}
    crashed: list[Step] = []

    def crash_once_at_checks(run: Run, step: Step) -> None:
        if step is Step.CHECKS and not crashed:
            crashed.append(step)
            raise Crash()

    env_harness.deps.on_step = crash_once_at_checks
    run = env_harness.create(FIX_ONCE_REQUEST)
    with pytest.raises(Crash):
        env_harness.run(run.id)
    [found] = recovery.sweep(
        env_harness.store,
        RunQueue(env_harness.connection, env_harness.store, name="q"),
        max_attempts=3,
    )
    assert found.outcome == "requeued"
    first = env_harness.run(run.id)  # resumes at the checks, in a new sandbox
    assert first.status is RunStatus.AWAITING_DECISION, first.error
    assert first.attempts == 2

    [key] = env_harness.environments()
    env = first.artifacts.environment
    assert env is not None
    assert env.key == key
    assert env.outcome == "built"
    # prepare's sandbox (the agent), the resumed job's (checks, fix round), the base
    # commit's checks: all on the one environment.
    assert env.sandboxes == 3
    assert env.updates == 0  # every sandbox was at the environment's own commit
    checks = [e for e in env_harness.store.events(run.id) if isinstance(e, ChecksRan)]
    assert [c.passed for c in checks] == [False, True]  # the fix round ran

    RunQueue(env_harness.connection, env_harness.store, name="q").request_rework(
        run.id, by="U1", feedback=REWORK_FEEDBACK
    )
    second = env_harness.run(run.id)
    assert second.status is RunStatus.AWAITING_DECISION, second.error
    assert second.iteration == 2
    reused = second.artifacts.environment
    assert reused is not None
    assert reused.key == key
    assert reused.outcome == "reused"
    # The rework starts from the pushed branch: the source moved, the key did not, so
    # environment.update ran (and setup did not).
    assert reused.updates == 1
    assert env_harness.envs.builds(key) == 1
    assert env_harness.environments() == [key]

    said = messages(env_harness, run.id, EnvironmentNoted)
    assert said[0].startswith(f"building the environment of {REPO} ({key[:12]})")
    assert any(m.startswith(f"environment {key[:12]} built in") for m in said)
    assert any(m.startswith(f"environment {key[:12]} reused") for m in said)
    thread = render_text(project(second, env_harness.store.tail_events(run.id, 50)))
    assert f"environment {key[:12]} reused" in thread
    prepared = messages(env_harness, run.id, Prepared)
    assert f"setup: in environment {key[:12]} (built)" in prepared[0]
    assert f"setup: in environment {key[:12]} (reused)" in prepared[-1]


def test_a_change_to_a_dependency_input_runs_setup_again_before_the_checks(
    env_harness: EnvHarness, wheelhouse: Path
) -> None:
    from tests.blueprint.helpers import finish, verdict, write

    source = env_repo(env_harness.root / "src", wheelhouse)
    env_harness.forge.create_repo(REPO, source=source)
    requirements = (source / "requirements.txt").read_text()
    env_harness.models.by_iteration = {
        1: [
            write("requirements.txt", requirements + "# pinned again\n"),
            finish("Pinned the dependency again."),
            verdict("approve", "Fine."),
            # requirements.txt brings in the security specialist (the factory's rules).
            verdict("approve", "The pin is unchanged."),
        ]
    }
    run = env_harness.create("pin the dependency again")
    final = env_harness.run(run.id)
    assert final.status is RunStatus.AWAITING_DECISION, final.error
    env = final.artifacts.environment
    assert env is not None
    assert env.updates == 1
    said = messages(env_harness, run.id, EnvironmentNoted)
    assert any("setup ran again in this run's sandbox before the checks" in m for m in said)
    # The cached environment is the one built at prepare, untouched.
    [key] = env_harness.environments()
    assert key == env.key
    assert env_harness.envs.builds(key) == 1


def test_a_failed_build_fails_the_run_with_the_command_and_is_tried_again(
    env_harness: EnvHarness, wheelhouse: Path
) -> None:
    from tests.environments.conftest import SETUP

    failing = [*SETUP, "for i in $(seq 1 40); do echo line-$i; done; exit 3"]
    source = env_repo(env_harness.root / "src", wheelhouse, setup=failing)
    env_harness.forge.create_repo(REPO, source=source)
    env_harness.models.by_iteration = {1: script("clean")}
    for attempt in (1, 2):  # the second run builds again: the failure was not cached
        run = env_harness.create(f"attempt {attempt}")
        final = env_harness.run(run.id)
        assert final.status is RunStatus.FAILED
        error = final.error or ""
        assert "setup command `for i in $(seq 1 40)" in error, attempt
        assert "exited 3" in error
        assert "line-1\n" in error
        assert "line-40" in error
        assert "line-20\n" not in error
        said = messages(env_harness, run.id, EnvironmentNoted)
        assert said[0].startswith(f"building the environment of {REPO}"), attempt
        thread = render_text(project(final, env_harness.store.tail_events(run.id, 50)))
        assert "setup command `for i in $(seq 1 40)" in thread
    assert env_harness.environments() == []
