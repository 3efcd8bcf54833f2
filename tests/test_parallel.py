"""`make pytest` runs the suite on pytest-xdist workers with ``--dist loadgroup``, and
tests/conftest.py keeps each module on one worker and the environment modules together,
so that they never run beside each other. That only holds while pytest-xdist and pytest
agree on how a group reaches the scheduler (pytest 9.2 stopped reading the attribute
pytest-xdist 3.8 writes, and the groups silently spread over the workers). This runs a
tiny suite on two workers and checks where its tests ran."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MODULE = """\
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("{group}")


@pytest.mark.parametrize("n", range(6))
def test_where(n: int) -> None:
    out = Path(os.environ["WHERE_DIR"]) / f"{{__name__}}-{{n}}"
    out.write_text(os.environ["PYTEST_XDIST_WORKER"])
"""


def test_loadgroup_keeps_a_group_on_one_worker(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    for name, group in (("test_a", "together"), ("test_b", "together"), ("test_c", "alone")):
        (suite / f"{name}.py").write_text(MODULE.format(group=group))
    where = tmp_path / "where"
    where.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # pytest-xdist alone (-p below): quicker
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "xdist", "-p", "no:cacheprovider", "-n", "2",
         "--dist", "loadgroup", "--rootdir", str(suite), str(suite)],
        cwd=suite, env={**env, "WHERE_DIR": str(where)}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
    ran = {path.name: path.read_text() for path in where.iterdir()}
    assert len(ran) == 18
    together = {worker for name, worker in ran.items() if not name.startswith("test_c")}
    assert len(together) == 1, f"one group ran on {sorted(together)}: see pyproject.toml's pin"
