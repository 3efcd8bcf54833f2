"""Oversized input is bounded and answered clearly: a 100,000-character Slack message
(over real signed HTTP to the bolt app), a 50 MB file read by the agent's read tool and a
command printing 1 GB (in a real Docker sandbox, through the agent's tools).

For the Docker cases the worker side's peak resident memory is measured: the kernel's
high-water mark (``VmHWM``) is reset through ``/proc/self/clear_refs`` just before the
call and read right after it, so the figure is this process's peak during the call.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import redis

from bot.requests import MAX_REQUEST_CHARS
from jobs.agent.tools import Toolbox
from jobs.agent.workspace import MAX_READ_BYTES, WorkspaceFiles
from runs.record import RunStatus
from sandboxes.config import SandboxConfig
from sandboxes.docker_sandbox import DockerSandbox
from tests.bot.conftest import ALICE, GENERAL, Harness, open_harness
from tests.reliability.figures import Table
from tests.reliability.surface import (
    ask,
    awaiting,
    bot_replies,
    ephemeral_texts,
    runs_created,
    snapshot,
)

HUGE = 100_000
OUTPUT_CHARS = 20_000
TABLE = Table(
    "security-oversized",
    "Security: oversized input",
    ["input", "bound", "who sees it (worker peak RSS)", "exact message"],
    notes=(
        f"Requests and thread replies over {MAX_REQUEST_CHARS:,} characters are refused "
        "before anything is stored. The read tool refuses files over "
        f"{MAX_READ_BYTES:,} bytes from their size alone; every tool result is cut to "
        f"the loop's output limit ({OUTPUT_CHARS:,} characters here) keeping head and "
        "tail, and the sandbox keeps only a bounded head and tail of a command's output "
        "while it drains the rest. Peak RSS is the worker process's `VmHWM`, reset "
        "before each call."
    ),
    order=64,
)
record_table = TABLE.fixture()


def peak_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/self/status")


def huge_text() -> str:
    line = "make the retry limit configurable, and here is why: " + "x" * 40 + "\n"
    return (line * (HUGE // len(line) + 1))[:HUGE]


@pytest.mark.redis
def test_a_100k_character_message(real_redis_conn: redis.Redis) -> None:
    with open_harness(real_redis_conn) as h:
        text = huge_text()
        ts, delivery = h.emu.mention(ALICE, GENERAL, f"in acme/api: {text}")
        assert delivery.status == 200
        h.settle()
        assert runs_created(h) == 0
        (answer,) = bot_replies(h, GENERAL, ts)
        told = answer["text"]
        assert told.startswith(f"That request is {HUGE:,} characters; I take at most 4,000.")
        TABLE.add("a 100,000-character mention", "no run", "thread reply", told)

        # The same as a follow-up while a run works, and as rework feedback.
        run = ask(h)
        follow_up(h, run.thread_ts or "", text, "while the run works")
        assert h.services.store.get(run.id).pending_feedback == []
        awaiting(h, run)
        follow_up(h, run.thread_ts or "", text, "as rework feedback")
        assert h.services.store.get(run.id).status is RunStatus.AWAITING_DECISION


def follow_up(h: Harness, thread_ts: str, text: str, when: str) -> None:
    before = snapshot(h)
    h.emu.mention(ALICE, GENERAL, text, thread_ts=thread_ts)
    h.settle()
    after = snapshot(h)
    assert (after.runs, after.jobs) == (before.runs, before.jobs)
    told = ephemeral_texts(h, ALICE)[-1]
    assert told.startswith(f"That message is {HUGE:,} characters; I take at most 4,000")
    TABLE.add(f"a 100,000-character thread reply {when}", "not used", "ephemeral", told)


@pytest.fixture(scope="module")
def docker_sandbox(docker_client: docker.DockerClient) -> Iterator[DockerSandbox]:
    config = SandboxConfig(workspace_size_mb=256, tmp_size_mb=64)
    with DockerSandbox("oversized", config, client=docker_client) as sandbox:
        yield sandbox


def toolbox(sandbox: DockerSandbox) -> Toolbox:
    return Toolbox(
        WorkspaceFiles(sandbox),
        output_chars=OUTPUT_CHARS,
        command_timeout=300,
        max_command_timeout=300,
    )


@pytest.mark.docker
@pytest.mark.slow
def test_a_50_mb_file_read_by_the_agent(docker_sandbox: DockerSandbox) -> None:
    size = 50 * 1024 * 1024
    made = docker_sandbox.exec(
        f"head -c {size} /dev/zero | tr '\\0' a > big.txt && echo needle >> big.txt"
    )
    assert made.ok, made.stderr
    tools = toolbox(docker_sandbox)
    peak_reset()
    out = tools.call("read_file", {"path": "big.txt"})
    peak = peak_mb()
    assert out.is_error
    told = out.content
    assert told == (
        f"read_file failed: big.txt is {size + 7:,} bytes, too large to read whole; use "
        "search, or `run` with head/sed to look at part of it"
    )
    assert size > MAX_READ_BYTES
    TABLE.add(
        "the read tool on a 50 MB file",
        "refused before reading",
        f"agent ({peak:.0f} MB peak)",
        told,
    )
    # A search that hits the one 50 MB line comes back cut to a line's worth.
    peak_reset()
    hits = tools.call("search", {"pattern": "a+needle", "path": "big.txt"})
    peak = peak_mb()
    assert not hits.is_error
    assert len(hits.content) <= 600
    assert "narrow the pattern or the path" in hits.content
    assert hits.content.startswith("big.txt:1:aaaa")
    TABLE.add(
        "search hitting that file's 50 MB line",
        f"{len(hits.content)} characters back",
        f"agent ({peak:.0f} MB peak)",
        hits.content[:40] + "…",
    )


@pytest.mark.docker
@pytest.mark.slow
def test_a_command_printing_1_gb(docker_sandbox: DockerSandbox) -> None:
    tools = toolbox(docker_sandbox)
    tools.call("run", {"command": "true"})
    peak_reset()
    baseline = peak_mb()
    out = tools.call(
        "run", {"command": "head -c 1073741824 /dev/zero | tr '\\0' x; echo finished >&2"}
    )
    peak = peak_mb()
    assert not out.is_error
    assert len(out.content) <= OUTPUT_CHARS
    first = out.content.splitlines()[0]
    assert first.startswith("exit code: 0 (the command printed more than the sandbox keeps: ")
    assert out.content.split("\n", 2)[1:2] == ["[stdout]"]
    assert "characters cut: results are limited to 20000" in out.content
    assert out.content.endswith("[stderr]\nfinished")
    # The worker keeps a bounded head and tail while it drains the stream.
    assert peak - baseline < 100, (baseline, peak)
    TABLE.add(
        "a command printing 1 GB",
        f"{len(out.content):,} characters back",
        f"agent (worker peak {peak:.0f} MB, {peak - baseline:+.0f} MB over the call)",
        first,
    )
