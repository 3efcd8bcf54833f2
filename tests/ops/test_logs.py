"""Structured logs: JSON lines that name the run, step and event, with secrets masked,
from the blueprint on fast parts and from a real ``agents worker`` and its forked job."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue

from cli.local_redis import open_redis as demo_connection
from jobs.queue import CANCEL_JOB
from process import logs, settings
from runs.counters import Counters
from runs.record import RunStatus
from runs.store import RunStore
from tests.blueprint.conftest import CLEAN_REQUEST, Harness, script
from tests.blueprint.conftest import direct_python as direct_python
from tests.blueprint.conftest import harness as harness
from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
STEPS = ("prepare", "plan", "agent", "checks", "review", "publish", "watch_ci")
SETTING_PREFIXES = ("AGENTS_", "SLACK_", "ANTHROPIC_", "GITHUB_", "REDIS_", "DOCKER_")

BOT_TOKEN = "xoxb-1111-2222-bottokenvalue"
APP_TOKEN = "xapp-1-A1-3333-apptokenvalue"
SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543"
ANTHROPIC_KEY = "sk-ant-api03-modelkeyvalue"
GITHUB_TOKEN = "ghp_forgetokenvalue0123456789"
REDIS_PASSWORD = "redis-pass-w0rd"


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.usefixtures("root_logging")
def test_a_huge_message_is_cut_never_printed_whole() -> None:
    """A library that logs a request body it refused (bolt logs a forged body at INFO)
    prints its head only."""
    out = io.StringIO()
    logs.configure("INFO", "json", stream=out)
    body = "B" * (10 * 1024 * 1024)
    logging.getLogger("slack_bolt.test").info("Invalid request signature detected (body: %s)", body)
    (line,) = lines(out)
    assert len(line["message"]) < logs.MAX_MESSAGE_CHARS + 100
    whole = len(f"Invalid request signature detected (body: {body})")
    assert line["message"].endswith(f"… [{whole - logs.MAX_MESSAGE_CHARS:,} characters cut]")


@pytest.mark.usefixtures("root_logging")
def test_a_json_line_names_its_run_step_and_event() -> None:
    out = io.StringIO()
    logs.configure("INFO", "json", stream=out)
    log = logging.getLogger("agents.test")
    with logs.bind(run_id=7):
        log.info("outside any step")
        with logs.bind(step="checks"):
            log.info("checking %s", "things", extra={"event": "checks"})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("it broke")
    log.debug("below the level")
    log.warning("unbound")

    first, second, third, fourth = lines(out)
    assert first["run_id"] == 7
    assert "step" not in first
    assert "event" not in first
    assert second["message"] == "checking things"
    assert (second["run_id"], second["step"], second["event"]) == (7, "checks", "checks")
    assert second["level"] == "INFO"
    assert second["logger"] == "agents.test"
    assert second["ts"].endswith("+00:00")
    assert third["level"] == "ERROR"
    assert "ValueError: boom" in third["exc"]
    assert "step" not in third  # the step's block had ended
    assert "run_id" not in fourth
    assert fourth["message"] == "unbound"


@pytest.mark.usefixtures("root_logging")
def test_text_format_keeps_the_fields_readable() -> None:
    out = io.StringIO()
    logs.configure("INFO", "text", stream=out)
    with logs.bind(run_id=3, step="agent"):
        logging.getLogger("agents.test").info("hello")
    line = out.getvalue().strip()
    assert line.endswith("INFO agents.test: hello [run_id=3 step=agent]")


@pytest.mark.usefixtures("root_logging")
def test_the_level_applies_to_every_logger_not_only_rq() -> None:
    out = io.StringIO()
    logs.configure("WARNING", "json", stream=out)
    logging.getLogger("jobs.blueprint.runner").info("quiet")
    logging.getLogger("bot.reporter").warning("loud")
    logging.getLogger("runs.store").info("quiet too")
    assert [line["message"] for line in lines(out)] == ["loud"]


SECRET_SETTINGS = [
    ("SLACK_BOT_TOKEN", BOT_TOKEN, "bot", {"SLACK_SIGNING_SECRET": SIGNING_SECRET}),
    ("SLACK_APP_TOKEN", APP_TOKEN, "bot", {"SLACK_APP_TOKEN": APP_TOKEN}),
    ("SLACK_SIGNING_SECRET", SIGNING_SECRET, "bot", {"SLACK_SIGNING_SECRET": SIGNING_SECRET}),
    (
        "REDIS_URL (bot)",
        REDIS_PASSWORD,
        "bot",
        {
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "REDIS_URL": f"redis://:{REDIS_PASSWORD}@redis.internal:6379/0",
        },
    ),
    (
        "ANTHROPIC_API_KEY",
        ANTHROPIC_KEY,
        "worker",
        {"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "AGENTS_FORGE": "local"},
    ),
    (
        "GITHUB_TOKEN",
        GITHUB_TOKEN,
        "worker",
        {"GITHUB_TOKEN": GITHUB_TOKEN, "AGENTS_MODEL_BACKEND": "replay"},
    ),
    (
        "REDIS_URL (worker)",
        REDIS_PASSWORD,
        "worker",
        {
            "REDIS_URL": f"redis://default:{REDIS_PASSWORD}@redis.internal:6379/0",
            "AGENTS_MODEL_BACKEND": "replay",
            "AGENTS_FORGE": "local",
        },
    ),
]


@pytest.mark.usefixtures("root_logging", "clean_env")
@pytest.mark.parametrize(
    ("name", "secret", "role", "env"), SECRET_SETTINGS, ids=[s[0] for s in SECRET_SETTINGS]
)
def test_every_secret_setting_is_masked_in_every_part_of_a_record(
    name: str, secret: str, role: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    if role == "bot":
        monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    loaded = settings.load(settings.ROLES[role])
    assert secret in logs.secret_values(loaded), name

    out = io.StringIO()
    logs.setup(loaded, stream=out)
    log = logging.getLogger("agents.test")
    log.info("message %s", f"with {secret} in an argument")
    log.info(f"message with {secret} in the format string")
    log.info("in an extra field", extra={"event": f"by {secret}"})
    try:
        raise RuntimeError(f"refused: {secret}")
    except RuntimeError:
        log.exception("in a traceback")
    log.info("%s", f"a url redis://:{secret}@host:6379/0")

    text = out.getvalue()
    assert secret not in text
    records = lines(out)
    assert records[0]["message"] == "message with *** in an argument"
    assert records[1]["message"] == "message with *** in the format string"
    assert records[2]["event"] == "by ***"
    assert "RuntimeError: refused: ***" in records[3]["exc"]
    assert records[4]["message"] == "a url redis://:***@host:6379/0"


@pytest.mark.usefixtures("root_logging")
def test_a_malformed_log_call_never_raises_nor_leaks_its_arguments() -> None:
    out = io.StringIO()
    logs.configure("INFO", "json", secrets=[GITHUB_TOKEN], stream=out)
    logging.getLogger("agents.test").info("two %s %s", GITHUB_TOKEN)
    (line,) = lines(out)
    assert line["message"] == "two %s %s (log arguments did not fit the format)"


def test_mask_url_hides_only_the_password() -> None:
    assert logs.mask_url("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"
    assert logs.mask_url("rediss://user:pw@host/1") == "rediss://user:***@host/1"
    assert logs.mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert logs.mask_url("unix://:pw@/run/redis.sock?db=2") == "unix://:***@/run/redis.sock?db=2"


# -- the blueprint on fast parts -------------------------------------------------------


@pytest.mark.usefixtures("root_logging")
def test_the_blueprint_logs_run_id_step_and_event_and_times_each_step(
    harness: Harness,
) -> None:
    out = io.StringIO()
    logs.configure("DEBUG", "json", stream=out)
    harness.script(script("clean"))
    run = harness.create(CLEAN_REQUEST)
    final = harness.run(run.id)
    assert final.status is RunStatus.AWAITING_DECISION, final.error

    records = [r for r in lines(out) if r.get("run_id") == run.id]
    events = [(r.get("event"), r.get("step")) for r in records if "event" in r]
    # Each step's event names the step it starts.
    for step in STEPS:
        assert ("step", step) in events
    # The agent's tool calls are logged inside the agent step, which is bound.
    assert ("turn", "agent") in events
    statuses = [r["message"] for r in records if r.get("event") == "status"]
    assert any("queued -> running" in m for m in statuses)
    assert any("running -> awaiting_decision" in m for m in statuses)
    # Records from inside a step carry it even when they are not events.
    pushed = [r for r in records if r["logger"] == "jobs.forge.steps"]
    assert pushed
    assert all(r["step"] == "publish" and "event" not in r for r in pushed)
    # Each step that completed added its duration to the fleet's totals.
    timed = {(t.step, t.outcome): t.count for t in Counters(harness.connection).read().steps}
    assert timed == {(step, "done"): 1 for step in STEPS}
    # Milestones say what kind they are.
    assert any(
        r.get("event") == "agent_finished" and r["message"].endswith("(by agent:builder)")
        for r in records
    )


# -- a real worker, its forked job, and the CLI's own output ---------------------------


def agents(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    base["PYTHONPATH"] = str(ROOT)
    base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def with_password(url: str, password: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://:{password}@{rest}"


@pytest.mark.redis
def test_a_real_worker_and_its_forked_job_log_json_with_secrets_masked(
    real_redis_conn: redis.Redis,
) -> None:
    store = RunStore(real_redis_conn)
    run = store.create(requester="U1", repo="acme/api", request="anything")
    queue = Queue("q-ops-logs", connection=real_redis_conn)
    # The user id the job records is the GitHub token: the worker must mask it.
    queue.enqueue(CANCEL_JOB, run.id, GITHUB_TOKEN)

    result = agents(
        "worker",
        "--burst",
        env={
            # Redis takes AUTH with any password for the default user that has none.
            "REDIS_URL": with_password(TEST_REDIS_URL, REDIS_PASSWORD),
            "AGENTS_QUEUE": "q-ops-logs",
            "AGENTS_MODEL_BACKEND": "anthropic",
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "GITHUB_TOKEN": GITHUB_TOKEN,
            "AGENTS_LOG_LEVEL": "INFO",
        },
    )
    assert result.returncode == 0, result.stderr
    assert store.get(run.id).status is RunStatus.CANCELLED

    for secret in (GITHUB_TOKEN, ANTHROPIC_KEY, REDIS_PASSWORD):
        assert secret not in result.stderr + result.stdout
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert {"jobs.worker", "rq.worker"} <= {r["logger"] for r in records}
    cancelled = [r for r in records if r.get("run_id") == run.id and r.get("event") == "status"]
    assert len(cancelled) == 1
    assert cancelled[0]["message"] == (
        f"run #{run.id} status queued -> cancelled: cancelled by *** (by ***)"
    )
    assert cancelled[0]["logger"] == "runs.store"


@pytest.mark.redis
@pytest.mark.parametrize(("level", "fmt"), [("WARNING", "json"), ("INFO", "text")])
def test_log_level_and_format_reach_a_real_worker(
    level: str, fmt: str, real_redis_conn: redis.Redis
) -> None:
    result = agents(
        "worker",
        "--burst",
        env={
            "REDIS_URL": TEST_REDIS_URL,
            "AGENTS_QUEUE": "q-ops-quiet",
            "AGENTS_MODEL_BACKEND": "replay",
            "AGENTS_FORGE": "local",
            "AGENTS_LOG_LEVEL": level,
            "AGENTS_LOG_FORMAT": fmt,
        },
    )
    assert result.returncode == 0, result.stderr
    listening = [line for line in result.stderr.splitlines() if "listening on queue" in line]
    if level == "WARNING":
        # Our own INFO lines are silenced too, not only RQ's.
        assert listening == []
        assert all(
            json.loads(line)["level"] in ("WARNING", "ERROR", "CRITICAL")
            for line in result.stderr.splitlines()
        )
    else:
        assert len(listening) == 1
        assert " INFO jobs.worker: worker " in listening[0]
        assert not listening[0].startswith("{")


PASSWORD_URL = f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0"
MASKED_URL = "redis://:***@127.0.0.1:1/0"


@pytest.mark.parametrize("command", ["doctor", "status"])
def test_doctor_and_status_mask_the_redis_password(command: str, tmp_path: Path) -> None:
    result = agents(command, env={"REDIS_URL": PASSWORD_URL})
    output = result.stdout + result.stderr
    assert MASKED_URL in output
    assert REDIS_PASSWORD not in output


@pytest.mark.usefixtures("clean_env")
def test_demo_masks_the_redis_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", PASSWORD_URL)
    client, where = demo_connection()
    client.close()
    assert where == f"Redis at {MASKED_URL}"
