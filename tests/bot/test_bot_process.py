"""``agents bot`` as users run it: a process in HTTP mode, against the emulator."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from fakes.slack.server import SlackEmulator
from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.redis
def test_http_mode_serves_healthz_and_answers_a_mention(real_redis_conn: redis.Redis) -> None:
    port = free_port()
    with SlackEmulator() as emu:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTS_", "SLACK_"))}
        env.update(
            emu.env(),
            REDIS_URL=TEST_REDIS_URL,
            AGENTS_BOT_PORT=str(port),
            AGENTS_CHANNEL_REPOS="C_GENERAL=acme/api",
            AGENTS_QUEUE="q-bot-process",
            PYTHONPATH=str(ROOT),
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "bot", "--host", "127.0.0.1"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    url = f"http://127.0.0.1:{port}/healthz"
                    with urllib.request.urlopen(url, timeout=5) as response:
                        assert response.status == 200
                        break
                except OSError:
                    assert proc.poll() is None, "agents bot exited"
                    assert time.monotonic() < deadline, "agents bot never answered /healthz"
                    time.sleep(0.2)
            emu.bot_url = f"http://127.0.0.1:{port}/slack/events"
            ts, delivery = emu.mention("U_ALICE", "C_GENERAL", "make the retry limit configurable")
            assert delivery.status == 200
            status = emu.wait_for_message(
                "C_GENERAL",
                lambda m: m.get("thread_ts") == ts and bool(m.get("bot_id")),
                timeout=60,
            )
            assert "#1" in status["text"]
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
