"""`make pytest` runs the suite on pytest-xdist workers with ``--dist loadgroup``, and
tests/conftest.py keeps each module on one worker and the environment modules together,
so that they never run beside each other. That only holds while pytest-xdist and pytest
agree on how a group reaches the scheduler (pytest 9.2 stopped reading the attribute
pytest-xdist 3.8 writes, and the groups silently spread over the workers), and the groups
start in the order tests/scheduling.py gives them only while pytest-xdist is kept from
reordering them. These run tiny suites on two workers and check where and when their
tests ran."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MODULE = """\
import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("{group}")


@pytest.mark.parametrize("n", range({count}))
def test_where(n: int) -> None:
    out = Path(os.environ["WHERE_DIR"]) / f"{{__name__}}-{{n}}"
    out.write_text(f"{{os.environ['PYTEST_XDIST_WORKER']}} {{time.time_ns()}}")
"""


def _run(suite: Path) -> dict[str, str]:
    """Run the suite on two workers; what each test wrote, by file name."""
    where = suite.parent / "where"
    where.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # pytest-xdist alone (-p below): quicker
    env["PYTHONPATH"] = str(ROOT)  # the suite's conftest imports tests.scheduling
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "xdist", "-p", "no:cacheprovider", "-n", "2",
         "--dist", "loadgroup", "--rootdir", str(suite), str(suite)],
        cwd=suite, env={**env, "WHERE_DIR": str(where)}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
    return {path.name: path.read_text() for path in where.iterdir()}


def test_loadgroup_keeps_a_group_on_one_worker(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    for name, group in (("test_a", "together"), ("test_b", "together"), ("test_c", "alone")):
        (suite / f"{name}.py").write_text(MODULE.format(group=group, count=6))
    ran = _run(suite)
    assert len(ran) == 18
    together = {worker.split()[0] for name, worker in ran.items() if not name.startswith("test_c")}
    assert len(together) == 1, f"one group ran on {sorted(together)}: see pyproject.toml's pin"


CONFTEST = """\
from tests import scheduling

def pytest_configure(config):
    scheduling.keep_order(config)

def pytest_collection_modifyitems(items):
    scheduling.order(items, {"test_long": 100.0, "test_mid": 50.0})
"""


def test_the_longest_group_starts_first(tmp_path: Path) -> None:
    """test_long has the fewest tests: pytest-xdist's own reordering, by number of tests,
    would hand it out last, after test_short."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(CONFTEST)
    for name, count in (("test_short", 6), ("test_mid", 6), ("test_long", 2)):
        (suite / f"{name}.py").write_text(MODULE.format(group=name, count=count))
    ran = _run(suite)
    started = {
        module: min(int(line.split()[1]) for name, line in ran.items() if name.startswith(module))
        for module in ("test_long", "test_short")
    }
    assert started["test_long"] < started["test_short"], started
