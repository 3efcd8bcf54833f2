"""Reading a command's output from the engine's multiplexed stream.

The engine forwards stdout and stderr from separate pipes, in no fixed order between
them: the wrapper's status line (stderr) can arrive before the last of stdout. A CI run
lost `cat README.md`'s output that way, through a TCP-forwarded engine on a loaded
machine, because the reader stopped one second after the status line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from sandboxes.docker_sandbox import LINGER, _StreamReader
from sandboxes.output import BoundedOutput
from sandboxes.wrapper import parse_status, wrap


class _Stream:
    """Frames as ``exec_start(stream=True, demux=True)`` yields them, with a pause, then
    held open (as a leftover process would hold it) until closed."""

    def __init__(self, frames: list[tuple[bytes | None, bytes | None] | float]) -> None:
        """``frames``: (stdout, stderr) chunks, and pauses in seconds."""
        self.frames = frames
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[tuple[bytes | None, bytes | None]]:
        for frame in self.frames:
            if isinstance(frame, float):
                self.closed.wait(frame)
            elif self.closed.is_set():
                return  # a closed stream yields nothing more: that output is lost
            else:
                yield frame
        self.closed.wait(60)

    def close(self) -> None:
        self.closed.set()


def test_stdout_arriving_after_the_status_line_is_kept() -> None:
    """The end line itself comes in two frames, the second after a pause: the read
    goes on until all of it is in."""
    invocation = wrap(["cat", "README.md"], 10, 1)
    end = invocation.end_bytes
    frames: list[tuple[bytes | None, bytes | None] | float] = [
        (None, invocation.marker + b"0 0 0\n"),
        1.5,
        (b"# sample\n" + end[:10], None),
        0.5,
        (end[10:], None),
    ]
    stream = _Stream(frames)
    stdout, stderr = BoundedOutput(4096), BoundedOutput(4096)
    reader = _StreamReader(stream, stdout, stderr, (invocation.end_line, invocation.status_line))
    try:
        assert reader.wait(time.monotonic() + 60)
    finally:
        reader.stop()
    assert reader.error is None
    assert stdout.take_last(invocation.end_line) is not None
    assert stdout.data() == b"# sample\n"
    assert parse_status(stderr.take_last(invocation.status_line)) is not None
    assert stderr.data() == b""


def test_both_lines_in_ends_the_read_while_a_leftover_process_holds_the_stream() -> None:
    """No waiting for a close that a stray background process would delay forever, nor
    for LINGER: the deadline given is shorter than that."""
    invocation = wrap(["sh", "-c", "sleep 1000 &"], 10, 1)
    stream = _Stream([(invocation.marker + b"end\n", invocation.marker + b"0 0 0\n")])
    lines = (invocation.end_line, invocation.status_line)
    reader = _StreamReader(stream, BoundedOutput(4096), BoundedOutput(4096), lines)
    try:
        assert LINGER > 5
        assert reader.wait(time.monotonic() + 5)
        assert not stream.closed.is_set()  # it returned with the stream still open
    finally:
        reader.stop()
