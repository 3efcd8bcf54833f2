"""The hidden tests, in a sandbox: put the task's test changes in, run them, read which
passed.

The tests run with pytest (``--test-command``, default ``python3 -m pytest``) and report
through a JUnit XML file (xunit1, which names each test's file), read back with
defusedxml and turned into pytest node ids (``tests/test_x.py::TestY::test_z``), the
ids SWE-bench's ``FAIL_TO_PASS`` and ``PASS_TO_PASS`` use. A test that did not run
(its file failed to import, say) counts as not passed.

Before the test changes go in, each file they touch is put back as it is at the
sandbox's base commit (or removed, if the patch creates it), so an agent that edited
or wrote those test files cannot make its own version of them count.
"""

from __future__ import annotations

import posixpath
import re
import shlex

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from jobs.checks import excerpt
from process.exceptions import TaskDropped
from sandboxes.protocol import ExecResult, Sandbox

TEST_PATCH_FILE = ".git/agents-eval-tests.patch"
REPORT_FILE = ".git/agents-eval-junit.xml"
MAX_REPORT_BYTES = 8 * 1024 * 1024
DEFAULT_TEST_COMMAND = "python3 -m pytest"
_DIFF_HEADER = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.MULTILINE)

Outcomes = dict[str, bool]


def safe_path(path: str) -> str:
    """A workspace-relative path from a patch or a test id; anything else is refused."""
    clean = posixpath.normpath(path)
    if clean.startswith(("/", "../")) or clean in (".", "..") or clean.startswith(".git/"):
        raise TaskDropped(f"the test changes name a path outside the repository: {path!r}")
    return clean


def patch_paths(patch: str) -> list[str]:
    """Every path a git diff touches (both sides of a rename)."""
    paths: set[str] = set()
    for old, new in _DIFF_HEADER.findall(patch):
        paths.update({safe_path(old), safe_path(new)})
    return sorted(paths)


def _tail(result: ExecResult) -> str:
    return excerpt(f"{result.stdout}\n{result.stderr}", 600)


def apply_test_patch(sandbox: Sandbox, patch: str) -> None:
    """Reset the files ``patch`` touches to the base commit, then apply it.

    Raises :class:`TaskDropped` when it does not apply (the commit no longer fits).
    """
    paths = patch_paths(patch)
    if paths:
        reset = 'for p in "$@"; do git checkout HEAD -- "$p" 2>/dev/null || rm -f -- "$p"; done'
        sandbox.exec(["sh", "-c", reset, "sh", *paths], timeout=300)
    sandbox.write_file(TEST_PATCH_FILE, patch.encode("utf-8"))
    result = sandbox.exec(
        ["git", "apply", "--binary", "--whitespace=nowarn", TEST_PATCH_FILE], timeout=300
    )
    sandbox.exec(["rm", "-f", TEST_PATCH_FILE], timeout=60)
    if not result.ok:
        raise TaskDropped(f"the test changes do not apply: {_tail(result)}")


def files_of(test_ids: list[str]) -> list[str]:
    """The test files that hold ``test_ids`` (``path::name`` node ids)."""
    return sorted({safe_path(test_id.split("::", 1)[0]) for test_id in test_ids})


def node_id(file: str, classname: str, name: str) -> str:
    """pytest's node id from an xunit1 testcase's ``file``, ``classname`` and ``name``."""
    module = file.removesuffix(".py").replace("/", ".")
    inner = classname[len(module) + 1 :] if classname.startswith(module + ".") else ""
    middle = "".join(f"::{part}" for part in inner.split(".") if part)
    return f"{file}{middle}::{name}"


def junit_outcomes(xml: bytes) -> Outcomes:
    """Which tests passed, from pytest's xunit1 JUnit report (bounded, defused)."""
    if len(xml) > MAX_REPORT_BYTES:
        raise ValueError(f"the test report is larger than {MAX_REPORT_BYTES // 2**20} MiB")
    root = ElementTree.fromstring(xml)
    outcomes: Outcomes = {}
    for case in root.iter("testcase"):
        file = case.get("file") or ""
        name = case.get("name") or ""
        if not file or not name:
            continue
        failed = any(case.find(kind) is not None for kind in ("failure", "error", "skipped"))
        test_id = node_id(file, case.get("classname") or "", name)
        # A test reported twice (an error in teardown after a pass) passed only if both say so.
        outcomes[test_id] = outcomes.get(test_id, True) and not failed
    return outcomes


def run_tests(
    sandbox: Sandbox, files: list[str], *, command: str = DEFAULT_TEST_COMMAND, timeout: float
) -> Outcomes:
    """Run the tests in ``files``; returns each test's outcome (an empty dict when the
    run produced no report, e.g. the test command does not exist)."""
    sandbox.exec(["rm", "-f", REPORT_FILE], timeout=60)
    quoted = " ".join(shlex.quote(path) for path in files)
    line = (
        f"{command} -p no:cacheprovider -q -o junit_family=xunit1 "
        f"--junitxml={REPORT_FILE} -- {quoted}"
    )
    sandbox.exec(line, timeout=timeout)
    try:
        report = sandbox.read_file(REPORT_FILE)
    except (FileNotFoundError, IsADirectoryError):
        return {}
    finally:
        sandbox.exec(["rm", "-f", REPORT_FILE], timeout=60)
    try:
        return junit_outcomes(report)
    except (ValueError, SyntaxError, DefusedXmlException):
        return {}


def derive(at_base: Outcomes, at_commit: Outcomes) -> tuple[list[str], list[str]]:
    """``FAIL_TO_PASS`` and ``PASS_TO_PASS`` of a task from history: the tests that pass
    at the commit and do not (or do) at the base with the test changes."""
    passing = [test for test, passed in at_commit.items() if passed]
    fail_to_pass = sorted(test for test in passing if not at_base.get(test, False))
    pass_to_pass = sorted(test for test in passing if at_base.get(test, False))
    return fail_to_pass, pass_to_pass


def unresolved(outcomes: Outcomes, fail_to_pass: list[str], pass_to_pass: list[str]) -> str | None:
    """Why the task is not resolved (the tests that did not pass), or None if it is."""
    broken = [t for t in fail_to_pass if not outcomes.get(t, False)]
    regressed = [t for t in pass_to_pass if not outcomes.get(t, False)]
    if not broken and not regressed:
        return None
    parts = []
    if broken:
        parts.append(f"{len(broken)} of {len(fail_to_pass)} FAIL_TO_PASS still fail ({broken[0]})")
    if regressed:
        parts.append(
            f"{len(regressed)} of {len(pass_to_pass)} PASS_TO_PASS now fail ({regressed[0]})"
        )
    return "; ".join(parts)
