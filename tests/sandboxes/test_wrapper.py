"""The in-sandbox wrapper, run with this machine's /bin/sh: fast, and the same script."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from sandboxes.wrapper import TIMEOUT_EXIT_CODE, Status, parse_status, wrap

pytestmark = pytest.mark.skipif(shutil.which("setsid") is None, reason="needs setsid")


def run(command: str, timeout: float = 5.0, grace: float = 0.5) -> tuple[Status, bytes, bytes]:
    invocation = wrap(["/bin/sh", "-c", command], timeout, grace)
    env = {"PATH": os.environ["PATH"], **invocation.env}
    proc = subprocess.run(invocation.argv, env=env, capture_output=True, timeout=60, check=False)
    status = parse_status(invocation.status_line.search(proc.stderr))
    assert status is not None, proc.stderr
    assert proc.returncode == status.exit_code
    # The end line is the last thing on stdout; the command's output is what precedes it.
    end = invocation.end_line.search(proc.stdout)
    assert end is not None, proc.stdout
    assert end.end() == len(proc.stdout)
    return status, proc.stdout[: end.start()], proc.stderr


def gone(pid_file: Path) -> bool:
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_exit_code_and_output_pass_through() -> None:
    status, out, err = run("echo out; echo err >&2; exit 7")
    assert status == Status(exit_code=7, timed_out=False, oom_kills=0)
    assert out == b"out\n"
    assert err.startswith(b"err\n")


def test_the_script_does_not_reach_the_command() -> None:
    _, out, _ = run("env")
    assert b"AGENTS_WRAPPER" not in out
    assert b"AGENTS_EXEC=" in out


def test_timeout_kills_the_command_and_says_so(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    status, _, _ = run(
        f"echo $$ > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; exec sleep 1000", timeout=1
    )
    assert status.timed_out
    assert status.exit_code == TIMEOUT_EXIT_CODE
    assert gone(pid_file)


def test_timeout_kills_a_command_that_ignores_sigterm(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    status, _, _ = run(f"trap '' TERM; echo $$ > {pid_file}; while :; do sleep 1; done", 1)
    assert status.timed_out
    assert gone(pid_file)


def test_timeout_also_kills_a_child_that_left_the_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    status, _, _ = run(
        f"setsid sh -c 'echo $$ > {pid_file}; exec sleep 1000' </dev/null >/dev/null 2>&1 & "
        "sleep 1000",
        timeout=1,
    )
    assert status.timed_out
    assert gone(pid_file)


def test_leftovers_in_the_group_end_with_the_command(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    status, out, _ = run(
        f"sh -c 'echo $$ > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; exec sleep 1000' & "
        f"while [ ! -s {pid_file} ]; do sleep 0.05; done; echo started"
    )
    assert not status.timed_out
    assert out == b"started\n"
    assert gone(pid_file)
