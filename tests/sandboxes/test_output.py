from __future__ import annotations

import re

import pytest

from sandboxes.output import BoundedOutput

STATUS = re.compile(rb"\nSTATUS (\d+)\n")


def test_short_output_is_kept_whole() -> None:
    out = BoundedOutput(100)
    out.feed(b"hello ")
    out.feed(b"world")
    assert out.text() == "hello world"
    assert out.cut == 0
    assert out.data() == b"hello world"


def test_long_output_keeps_head_and_tail_and_says_how_much_was_cut() -> None:
    out = BoundedOutput(10)
    for chunk in (b"ABCDE", b"middle-" * 100, b"VWXYZ"):
        out.feed(chunk)
    assert out.total == 710
    assert out.cut == 700
    assert out.text() == "ABCDE\n[... 700 bytes cut ...]\nVWXYZ"
    with pytest.raises(ValueError, match="700 bytes were cut"):
        out.data()


def test_output_split_across_many_small_feeds_is_bounded() -> None:
    out = BoundedOutput(8)
    for n in range(200):
        out.feed(b"%c" % (ord("a") + n % 26))
    assert out.head() == b"abcd"
    assert out.text() == "abcd\n[... 192 bytes cut ...]\nopqr"
    assert out.cut == 192


def test_status_line_is_taken_out_of_short_output() -> None:
    out = BoundedOutput(20)
    out.feed(b"warning: x")
    out.feed(b"\nSTATUS 3\n")
    match = out.take_last(STATUS)
    assert match is not None
    assert match.group(1) == b"3"
    assert out.text() == "warning: x"
    assert out.total == len(b"warning: x")


def test_status_line_is_taken_out_of_the_tail_and_counts_stay_right() -> None:
    out = BoundedOutput(40)
    out.feed(b"x" * 1000)
    out.feed(b"\nSTATUS 0\n")
    assert out.take_last(STATUS) is not None
    assert out.total == 1000
    assert out.cut == 1000 - 20 - 10  # head 20; the tail kept 20 bytes, 10 were status
    assert out.text() == "x" * 20 + "\n[... 970 bytes cut ...]\n" + "x" * 10


def test_missing_status_line_changes_nothing() -> None:
    out = BoundedOutput(40)
    out.feed(b"no status here")
    assert out.take_last(STATUS) is None
    assert out.text() == "no status here"


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    out = BoundedOutput(100)
    out.feed(b"ok \xff\xfe done")
    assert out.text() == "ok \ufffd\ufffd done"
