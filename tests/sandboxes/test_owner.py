from __future__ import annotations

import os
import socket
import subprocess
import sys

from sandboxes.owner import Owner, machine_token, process_start_time


def test_this_process_is_alive() -> None:
    assert Owner.current().is_alive() is True


def test_an_exited_process_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    token = f"{machine_token()}/{process_start_time(child.pid)}"
    child.wait()
    assert Owner(socket.gethostname(), child.pid, token).is_alive() is False


def test_a_reused_pid_is_not_mistaken_for_the_owner() -> None:
    me = Owner.current()
    started = me.token.rpartition("/")[2]
    impostor = Owner(me.host, me.pid, f"{machine_token()}/{int(started) - 1}")
    assert impostor.is_alive() is False


def test_owners_this_process_cannot_see_are_unknown() -> None:
    me = Owner.current()
    assert Owner("another-host", me.pid, me.token).is_alive() is None
    other_namespace = "boot/pid:[1]/" + me.token.rpartition("/")[2]
    assert Owner(me.host, me.pid, other_namespace).is_alive() is None
    assert Owner(me.host, me.pid, "").is_alive() is None


def test_labels_round_trip_and_garbage_is_refused() -> None:
    me = Owner.current()
    assert Owner.from_labels(me.label, me.token) == me
    assert me.label == f"{socket.gethostname()}:{os.getpid()}"
    assert Owner.from_labels("no-pid-here", "") is None
    assert Owner.from_labels(":12", "") is None


def test_a_zombie_owner_is_dead() -> None:
    import signal
    import subprocess
    import time

    from sandboxes.owner import process_start_time

    child = subprocess.Popen(["sleep", "60"])
    try:
        assert process_start_time(child.pid) != ""
        child.send_signal(signal.SIGKILL)
        # Not waited for yet: the kernel keeps it as a zombie until we reap it.
        deadline = time.monotonic() + 10
        while process_start_time(child.pid) != "" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process_start_time(child.pid) == ""
    finally:
        child.wait()
