"""The shell wrapper every sandbox command runs under, and how to read its report.

The timeout lives inside the sandbox, not in the client: a watcher process started
next to the command sends SIGTERM to the command's process group when time is up,
SIGKILL after a grace period, then kills any process that escaped the group but
still carries this command's marker variable. So a command is stopped on time even
if the worker stops listening or dies.

When the command exits on its own, whatever is left of its process group is killed
too: a stray ``server &`` would otherwise hold the output stream open forever. A
service meant to outlive its command must be started with ``setsid`` and its output
redirected. The watcher ends with its command too: it is killed by its process id
(it may not have made its own group yet, when the command was quick) and by its group
(its ``sleep``), and reaped, so no helper outlives the command.

The wrapper's last line on stderr reports the exit code, whether the timeout fired,
and how many processes the kernel's OOM killer ended while the command ran (read from
the container's memory cgroup, v1 or v2). Just before it, an end line goes to stdout:
the engine forwards stdout and stderr from separate pipes, in no fixed order, so the
status line alone does not say that all of stdout has arrived. Both lines carry a
per-command nonce and are removed before the caller sees the output.

Plain POSIX sh plus ``setsid`` and ``sleep``: it runs on Debian, Alpine and busybox.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

MARKER_VARIABLE = "AGENTS_EXEC"
TIMEOUT_EXIT_CODE = 124

SCRIPT = r"""
unset AGENTS_WRAPPER
t=$1 grace_ticks=$2 nonce=$3
shift 3
watch='
    sleep "$1"
    kill -s USR1 "$2" 2>/dev/null
    kill -s TERM -- "-$3" 2>/dev/null
    i=0
    while [ "$i" -lt "$4" ] && kill -0 -- "-$3" 2>/dev/null; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -s KILL -- "-$3" 2>/dev/null
    for d in /proc/[0-9]*; do
        if tr "\0" "\n" < "$d/environ" 2>/dev/null | grep -qx "AGENTS_EXEC=$5"; then
            kill -s KILL "${d#/proc/}" 2>/dev/null
        fi
    done
'
read_oom_kills() {
    oom_kills=0
    for f in /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control; do
        if [ -r "$f" ]; then
            while read -r key value; do
                if [ "$key" = oom_kill ]; then oom_kills=$value; return; fi
            done < "$f"
        fi
    done
}
kill_group() {
    n=0
    while kill -s KILL -- "-$1" 2>/dev/null && [ "$n" -lt 100 ]; do n=$((n + 1)); done
}
read_oom_kills
before=$oom_kills
timed_out=0
trap 'timed_out=1' USR1
AGENTS_EXEC=$nonce setsid "$@" &
pid=$!
AGENTS_WATCH=$watch setsid sh -c 'eval "$AGENTS_WATCH"' agents-watch \
    "$t" "$$" "$pid" "$grace_ticks" "$nonce" </dev/null >/dev/null 2>&1 &
watcher=$!
while :; do
    wait "$pid"
    rc=$?
    kill -0 "$pid" 2>/dev/null || break
done
fired=$timed_out
if [ "$fired" = 1 ]; then
    wait "$watcher"
    rc=124
else
    kill -s KILL "$watcher" 2>/dev/null
    kill -s KILL -- "-$watcher" 2>/dev/null
    wait "$watcher" 2>/dev/null
fi
kill_group "$pid"
read_oom_kills
printf '\nAGENTS-EXEC-%s end\n' "$nonce"
printf '\nAGENTS-EXEC-%s %s %s %s\n' "$nonce" "$rc" "$fired" "$((oom_kills - before))" >&2
exit "$rc"
"""


@dataclass(frozen=True)
class Invocation:
    """One wrapped command: the argv to run and the pattern of its status line."""

    argv: list[str]
    env: dict[str, str]
    nonce: str

    @property
    def marker(self) -> bytes:
        """What both of the wrapper's own lines start with."""
        return b"\nAGENTS-EXEC-" + self.nonce.encode() + b" "

    @property
    def status_line(self) -> re.Pattern[bytes]:
        """The last line on stderr: exit code, timeout fired, OOM kills."""
        return re.compile(re.escape(self.marker) + rb"(\d+) ([01]) (-?\d+)\n")

    @property
    def end_bytes(self) -> bytes:
        """The last line on stdout: everything the command wrote to stdout came before."""
        return self.marker + b"end\n"

    @property
    def end_line(self) -> re.Pattern[bytes]:
        return re.compile(re.escape(self.end_bytes))


@dataclass(frozen=True)
class Status:
    exit_code: int
    timed_out: bool
    oom_kills: int


def wrap(argv: Sequence[str], timeout: float, grace: float, shell: str = "/bin/sh") -> Invocation:
    """How to run ``argv`` under the wrapper with ``timeout`` seconds.

    The script travels in an environment variable that it unsets first thing, so
    ``ps`` in the sandbox shows a short command line and the command never sees it.
    """
    nonce = secrets.token_hex(8)
    ticks = max(1, round(grace * 10))
    return Invocation(
        argv=[
            shell,
            "-c",
            'eval "$AGENTS_WRAPPER"',
            "agents-exec",
            f"{timeout:.3f}",
            str(ticks),
            nonce,
            *argv,
        ],
        env={"AGENTS_WRAPPER": SCRIPT},
        nonce=nonce,
    )


def parse_status(match: re.Match[bytes] | None) -> Status | None:
    if match is None:
        return None
    return Status(
        exit_code=int(match.group(1)),
        timed_out=match.group(2) == b"1",
        oom_kills=int(match.group(3)),
    )
