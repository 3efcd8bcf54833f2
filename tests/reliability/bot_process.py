"""A real `agents bot` process in HTTP mode for the soak and the secret scan, and what
they read back from the Slack emulator it talks to."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fakes.slack.server import SlackEmulator
from tests.blueprint.e2e import clean_env, wait_for
from tests.conftest import TEST_REDIS_URL
from tests.reliability.harness import free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]


def bot_env(
    emu: SlackEmulator, channel: str, repo: str, queue: str, **extra: str
) -> dict[str, str]:
    """This process's environment without secrets, plus the emulator's Slack settings,
    the test Redis, ``channel``'s repository and the queue (and ``extra``)."""
    env = clean_env()
    env.update(
        emu.env(),
        REDIS_URL=TEST_REDIS_URL,
        AGENTS_CHANNEL_REPOS=f"{channel}={repo}",
        AGENTS_QUEUE=queue,
        **extra,
    )
    return env


@dataclass
class BotProcess:
    """`agents bot` in HTTP mode, logging to a file."""

    proc: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.proc)


def start_bot(tmp: Path, env: dict[str, str]) -> BotProcess:
    """Start `agents bot` with ``env`` (plus PYTHONPATH and a free port); wait for
    ``/healthz``."""
    port = free_port()
    log = tmp / "bot.log"
    full = {**env, "AGENTS_BOT_PORT": str(port), "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "bot", "--host", "127.0.0.1"],
            cwd=ROOT,
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    bot = BotProcess(proc, log, port)

    def healthy() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"agents bot exited with {proc.returncode}:\n{bot.logs()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    wait_for(healthy, "agents bot to answer /healthz", limit=120)
    return bot


def all_messages(emu: SlackEmulator) -> list[dict[str, Any]]:
    """Every message the emulator holds (thread replies included), each with its
    earlier versions, and every ephemeral message."""
    out: list[dict[str, Any]] = []
    with emu.ws.lock:
        for messages in emu.ws.messages.values():
            for item in messages:
                shown = emu.ws.message_json(item)
                shown["earlier_versions"] = [repr(edit) for edit in item.edits]
                out.append(shown)
    out.extend(emu.ephemerals())
    return out


def approve_button_ts(emu: SlackEmulator, channel: str, thread_ts: str) -> str | None:
    """The newest message of the thread with an Approve button."""
    for item in reversed(emu.thread(channel, thread_ts)):
        for block in item.get("blocks") or []:
            if block.get("type") == "actions" and any(
                e.get("action_id") == "agents_approve" for e in block.get("elements", [])
            ):
                return str(item["ts"])
    return None
