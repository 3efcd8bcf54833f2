"""tests/scheduling.py: the measured table it orders the groups by, and the order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import scheduling

JUNIT = """\
<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.reliability.test_soak" name="test_soak" time="140.4"/>
<testcase classname="tests.environments.test_cli" name="test_a" time="30.0"/>
<testcase classname="tests.environments.test_gc" name="test_b" time="20.2"/>
<testcase classname="tests.bot.test_app.TestMentions" name="test_c" time="3.0"/>
<testcase classname="tests.bot.test_app" name="test_d" time="3.0"/>
<testcase classname="tests.bot.test_quick" name="test_e" time="0.4"/>
<testcase classname="" name="test_f" time="9.0"/>
</testsuite></testsuites>
"""


def test_the_table_sums_each_group_and_leaves_out_the_short_ones(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(JUNIT)
    assert scheduling.measured(report) == {
        "tests.reliability.test_soak": 140,
        "environments": 50,
        "tests.bot.test_app": 6,  # a test class counts toward its module
    }


def test_refreshing_writes_the_table_and_names_the_missing_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(JUNIT)
    table = tmp_path / "durations.json"
    monkeypatch.setattr(scheduling, "DURATIONS", table)
    assert scheduling.main([str(report)]) == 0
    assert list(json.loads(table.read_text())) == [
        "tests.reliability.test_soak", "environments", "tests.bot.test_app",
    ]  # fmt: skip
    assert scheduling.load_durations(table)["environments"] == 50.0
    assert scheduling.main([str(tmp_path / "none.xml")]) == 1
    assert "no JUnit report; run `make pytest` first" in capsys.readouterr().err
    assert scheduling.load_durations(tmp_path / "absent.json") == {}


def test_an_unmeasured_slow_group_goes_first_and_an_unmeasured_quick_one_last() -> None:
    durations = {"tests.a": 100.0, "tests.b": 10.0}
    slow = {"tests.new_soak"}
    ranked = sorted(
        ["tests.b", "tests.quick", "tests.new_soak", "tests.a"],
        key=lambda group: -scheduling.expected_seconds(group, durations, slow),
    )
    assert ranked == ["tests.new_soak", "tests.a", "tests.b", "tests.quick"]


def test_the_committed_table_is_readable_and_longest_first() -> None:
    table = scheduling.load_durations()
    assert table, "tests/durations.json is missing: run `make pytest`, then `make durations`"
    assert list(table.values()) == sorted(table.values(), reverse=True)
