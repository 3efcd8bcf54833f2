"""The tools, run in a real sandbox on a copy of the sample repository."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from jobs.agent.tool_specs import BUILDER_TOOLS, TOOLS, bound, describe_call
from jobs.agent.tools import Toolbox
from jobs.agent.workspace import WorkspaceFiles
from process.exceptions import SandboxGone
from sandboxes.cache import WorkspaceArchive as SampleArchive
from sandboxes.local_sandbox import LocalSandbox


def make_toolbox(sandbox: LocalSandbox, *, output_chars: int = 20_000) -> Toolbox:
    return Toolbox(
        WorkspaceFiles(sandbox),
        output_chars=output_chars,
        command_timeout=30,
        max_command_timeout=60,
    )


@pytest.fixture
def tools(sandbox: LocalSandbox) -> Toolbox:
    return make_toolbox(sandbox)


# -- read_file ------------------------------------------------------------------------


def test_read_file_numbers_lines(tools: Toolbox) -> None:
    out = tools.call("read_file", {"path": "retrying/retry.py"})
    assert not out.is_error
    lines = out.content.splitlines()
    assert lines[0] == "retrying/retry.py: lines 1-37 of 37"
    assert (
        lines[1]
        == '     1\t"""Retry a call that fails now and then, backing off between attempts."""'
    )
    assert "    11\tMAX_ATTEMPTS = 3" in lines


def test_read_file_line_range(tools: Toolbox) -> None:
    out = tools.call("read_file", {"path": "retrying/retry.py", "start_line": 11, "end_line": 12})
    assert out.content == "retrying/retry.py: lines 11-12 of 37\n    11\tMAX_ATTEMPTS = 3\n    12\t"


def test_read_file_past_the_end_is_an_error(tools: Toolbox) -> None:
    out = tools.call("read_file", {"path": "retrying/retry.py", "start_line": 99})
    assert out.is_error
    assert "start_line 99 is past the end" in out.content


def test_read_file_cuts_long_files_at_a_line_with_a_marker(
    sandbox: LocalSandbox, workspace: Path
) -> None:
    (workspace / "long.txt").write_text("".join(f"line {n}\n" for n in range(1, 5001)))
    out = make_toolbox(sandbox, output_chars=2000).call("read_file", {"path": "long.txt"})
    assert len(out.content) <= 2000
    last_shown = int(out.content.splitlines()[-2].split("\t")[0])
    assert out.content.endswith(f"read on with start_line={last_shown + 1}]")
    assert out.content.startswith(f"long.txt: lines 1-{last_shown} of 5000")


def test_read_file_refuses_directories_missing_and_binary_files(
    tools: Toolbox, workspace: Path
) -> None:
    (workspace / "blob.bin").write_bytes(b"\x00\x01\x02" * 10)
    assert "is a directory" in tools.call("read_file", {"path": "retrying"}).content
    assert "no such file: nope.py" in tools.call("read_file", {"path": "nope.py"}).content
    assert "binary file" in tools.call("read_file", {"path": "blob.bin"}).content


# -- paths stay inside the workspace --------------------------------------------------


@pytest.mark.parametrize(
    ("path", "complaint"),
    [
        ("../outside.txt", "uses '..'"),
        ("retrying/../../outside.txt", "uses '..'"),
        ("/etc/passwd", "is absolute"),
        ("", "the path is empty"),
    ],
)
def test_paths_that_leave_the_workspace_are_refused(
    tools: Toolbox, workspace: Path, path: str, complaint: str
) -> None:
    (workspace.parent / "outside.txt").write_text("secret")
    for name, args in [
        ("read_file", {"path": path}),
        ("write_file", {"path": path, "content": "x"}),
        ("edit_file", {"path": path, "old_text": "secret", "new_text": "x"}),
        ("list_files", {"path": path}),
        ("search", {"pattern": "secret", "path": path}),
    ]:
        out = tools.call(name, args)
        assert out.is_error, name
        assert complaint in out.content, (name, out.content)
    assert (workspace.parent / "outside.txt").read_text() == "secret"


def test_symlinks_that_escape_are_refused(tools: Toolbox, workspace: Path) -> None:
    outside = workspace.parent / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside / "secret.txt", workspace / "link.txt")
    os.symlink(outside, workspace / "linkdir")
    for name, args in [
        ("read_file", {"path": "link.txt"}),
        ("write_file", {"path": "link.txt", "content": "overwritten"}),
        ("edit_file", {"path": "link.txt", "old_text": "secret", "new_text": "x"}),
        ("write_file", {"path": "linkdir/new.txt", "content": "planted"}),
        ("list_files", {"path": "linkdir"}),
        ("search", {"pattern": "secret", "path": "linkdir"}),
    ]:
        out = tools.call(name, args)
        assert out.is_error, name
        assert "resolves outside the workspace" in out.content, (name, out.content)
    assert (outside / "secret.txt").read_text() == "secret"
    assert not (outside / "new.txt").exists()


def test_symlinks_inside_the_workspace_work(tools: Toolbox, workspace: Path) -> None:
    os.symlink("retrying/retry.py", workspace / "alias.py")
    out = tools.call("read_file", {"path": "alias.py", "start_line": 11, "end_line": 11})
    assert out.content == "retrying/retry.py: lines 11-11 of 37\n    11\tMAX_ATTEMPTS = 3"


# -- edit_file and write_file ---------------------------------------------------------


def test_edit_file_replaces_exact_text(tools: Toolbox, workspace: Path) -> None:
    out = tools.call(
        "edit_file",
        {
            "path": "retrying/retry.py",
            "old_text": "MAX_ATTEMPTS = 3",
            "new_text": "MAX_ATTEMPTS = 5",
        },
    )
    assert not out.is_error, out.content
    assert out.content.startswith("edited retrying/retry.py: replaced 1 line(s) at line 11")
    assert "    11\tMAX_ATTEMPTS = 5" in out.content
    assert "MAX_ATTEMPTS = 5\n" in (workspace / "retrying/retry.py").read_text()


def test_edit_file_fails_clearly_when_text_is_missing(tools: Toolbox, workspace: Path) -> None:
    before = (workspace / "retrying/retry.py").read_text()
    out = tools.call(
        "edit_file",
        {"path": "retrying/retry.py", "old_text": "MAX_ATTEMPTS = 4", "new_text": "x"},
    )
    assert out.is_error
    assert "old_text was not found in retrying/retry.py" in out.content
    assert (workspace / "retrying/retry.py").read_text() == before


def test_edit_file_hints_at_whitespace_differences(tools: Toolbox) -> None:
    out = tools.call(
        "edit_file",
        {"path": "retrying/retry.py", "old_text": "last = err\nif attempt", "new_text": "x"},
    )
    assert out.is_error
    assert "matches if whitespace is ignored" in out.content
    assert "appears at line(s) 34" in out.content


def test_edit_file_fails_clearly_when_text_is_not_unique(tools: Toolbox, workspace: Path) -> None:
    before = (workspace / "retrying/retry.py").read_text()
    out = tools.call(
        "edit_file",
        {"path": "retrying/retry.py", "old_text": "MAX_ATTEMPTS", "new_text": "LIMIT"},
    )
    assert out.is_error
    assert "occurs 5 times in retrying/retry.py (at lines 11, 28, 30, 35, 37)" in out.content
    assert (workspace / "retrying/retry.py").read_text() == before


def test_edit_file_keeps_windows_line_endings(tools: Toolbox, workspace: Path) -> None:
    (workspace / "crlf.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    out = tools.call("edit_file", {"path": "crlf.txt", "old_text": "one\ntwo", "new_text": "1\n2"})
    assert not out.is_error, out.content
    assert (workspace / "crlf.txt").read_bytes() == b"1\r\n2\r\nthree\r\n"


def test_edit_file_refuses_a_no_op(tools: Toolbox) -> None:
    out = tools.call(
        "edit_file", {"path": "README.md", "old_text": "# retrying", "new_text": "# retrying"}
    )
    assert out.is_error
    assert "nothing would change" in out.content


def test_git_internals_are_not_written(tools: Toolbox, workspace: Path) -> None:
    hook = tools.call("write_file", {"path": ".git/hooks/pre-commit", "content": "curl evil"})
    assert hook.is_error
    assert "managed by the system" in hook.content
    assert not (workspace / ".git/hooks/pre-commit").exists()
    assert tools.call("read_file", {"path": ".git/HEAD"}).is_error is False


def test_write_file_creates_directories(tools: Toolbox, workspace: Path) -> None:
    out = tools.call("write_file", {"path": "docs/new/usage.md", "content": "# Usage\nhi\n"})
    assert out.content == "created docs/new/usage.md (11 bytes, 2 lines)"
    assert (workspace / "docs/new/usage.md").read_text() == "# Usage\nhi\n"
    again = tools.call("write_file", {"path": "docs/new/usage.md", "content": "x"})
    assert again.content == "overwrote docs/new/usage.md (1 bytes, 1 lines)"


# -- list_files and search ------------------------------------------------------------


def test_list_files_globs(tools: Toolbox) -> None:
    assert tools.call("list_files", {"pattern": "*.py"}).content == (
        "retrying/__init__.py\nretrying/retry.py\ntests/test_retry.py"
    )
    assert tools.call("list_files", {"pattern": "tests/*.py"}).content == "tests/test_retry.py"
    assert tools.call("list_files", {"pattern": "*.py", "path": "tests"}).content == (
        "tests/test_retry.py"
    )
    everything = tools.call("list_files", {}).content.splitlines()
    assert "AGENTS.md" in everything
    assert not any(line.startswith(".git/") for line in everything)
    none = tools.call("list_files", {"pattern": "*.rs"})
    assert not none.is_error
    assert none.content == "no files match '*.rs' in ."


def test_list_files_is_bounded(tools: Toolbox, workspace: Path) -> None:
    many = workspace / "many"
    many.mkdir()
    for n in range(350):
        (many / f"f{n:03d}.txt").write_text("")
    lines = tools.call("list_files", {"pattern": "many/*.txt"}).content.splitlines()
    assert len(lines) == 301
    assert lines[0] == "many/f000.txt"
    assert lines[-1] == "[... 50 more; narrow the pattern or path]"


def test_search_finds_sorted_hits(tools: Toolbox) -> None:
    out = tools.call("search", {"pattern": "MAX_ATTEMPTS( =|\\))", "include": "*.py"})
    assert out.content.splitlines() == [
        "retrying/retry.py:11:MAX_ATTEMPTS = 3",
        "retrying/retry.py:37:    raise RetryError(MAX_ATTEMPTS) from last",
    ]


def test_search_bounds_hits(tools: Toolbox) -> None:
    out = tools.call("search", {"pattern": "MAX_ATTEMPTS", "max_hits": 2})
    lines = out.content.splitlines()
    assert len(lines) == 3
    assert lines[-1].startswith("[... ")
    assert lines[-1].endswith(" more hits; narrow the search]")


def test_search_reports_no_matches_and_bad_patterns(tools: Toolbox) -> None:
    none = tools.call("search", {"pattern": "no such text anywhere"})
    assert not none.is_error
    assert none.content == "no matches for /no such text anywhere/ in ."
    bad = tools.call("search", {"pattern": "("})
    assert bad.is_error
    assert bad.content.startswith("search failed: grep:")


# -- run ------------------------------------------------------------------------------


def test_run_reports_exit_code_and_output(tools: Toolbox) -> None:
    out = tools.call("run", {"command": "echo out; echo err >&2; exit 3"})
    assert not out.is_error
    assert out.content == "exit code: 3\n[stdout]\nout\n[stderr]\nerr"


def test_run_output_is_bounded_with_a_marker(sandbox: LocalSandbox) -> None:
    tools = make_toolbox(sandbox, output_chars=1000)
    out = tools.call("run", {"command": "seq 1 5000"})
    assert len(out.content) <= 1000
    assert "characters cut: results are limited to 1000" in out.content
    assert out.content.startswith("exit code: 0\n[stdout]\n1\n2\n")
    assert out.content.endswith("4999\n5000")


def test_run_timeout_is_an_error(sandbox: LocalSandbox) -> None:
    tools = Toolbox(
        WorkspaceFiles(sandbox), output_chars=2000, command_timeout=0.2, max_command_timeout=0.2
    )
    out = tools.call("run", {"command": "sleep 5", "timeout": 100})
    assert out.is_error
    assert out.content.startswith("timed out after 0.2s and was killed")


def test_run_timeout_never_exceeds_the_remaining_wall_clock(sandbox: LocalSandbox) -> None:
    tools = Toolbox(
        WorkspaceFiles(sandbox),
        output_chars=2000,
        command_timeout=100,
        max_command_timeout=100,
        remaining_seconds=lambda: 0.2,
    )
    out = tools.call("run", {"command": "sleep 5"})
    assert out.content.startswith("timed out after 0.2s")


# -- errors come back as results ------------------------------------------------------


def test_unknown_tool_and_invalid_input_are_error_results(tools: Toolbox) -> None:
    unknown = tools.call("delete_everything", {})
    assert unknown.is_error
    assert (
        "unknown tool 'delete_everything'; the tools are: read_file, list_files" in unknown.content
    )
    missing = tools.call("edit_file", {"path": "README.md"})
    assert missing.is_error
    assert "invalid input for edit_file: old_text: Field required; new_text: Field required" in (
        missing.content
    )
    extra = tools.call("read_file", {"path": "README.md", "mode": "rb"})
    assert "mode: Extra inputs are not permitted" in extra.content
    not_a_dict = tools.call("run", "ls")
    assert not_a_dict.is_error


def test_an_exception_inside_a_tool_is_an_error_result(
    sample_archive: SampleArchive, tmp_path: Path
) -> None:
    class Broken(LocalSandbox):
        def read_file(self, path: str) -> bytes:
            raise OSError(5, "Input/output error")

    with Broken("broken", workspace=sample_archive, parent=tmp_path) as broken:
        out = make_toolbox(broken).call("read_file", {"path": "README.md"})
    assert out.is_error
    assert out.content == "read_file failed: OSError: [Errno 5] Input/output error"


def test_a_sandbox_that_is_gone_stops_the_run(sandbox: LocalSandbox) -> None:
    tools = make_toolbox(sandbox)
    sandbox.close()
    with pytest.raises(SandboxGone):
        tools.call("read_file", {"path": "README.md"})


def test_finish_needs_a_summary(tools: Toolbox) -> None:
    assert tools.call("finish", {"summary": ""}).is_error
    done = tools.call("finish", {"summary": " did it ", "notes_for_reviewer": "check x"})
    assert done.finish is not None
    assert (done.finish.summary, done.finish.notes_for_reviewer) == ("did it", "check x")


# -- schemas and helpers --------------------------------------------------------------


def test_tool_schemas_are_plain_json_schema(tools: Toolbox) -> None:
    specs = {spec["name"]: spec for spec in tools.specs}
    assert list(specs) == [
        "read_file",
        "list_files",
        "search",
        "edit_file",
        "write_file",
        "run",
        "todo",
        "finish",
    ]
    for spec in specs.values():
        schema = spec["input_schema"]
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        assert "title" not in str(schema)
        assert spec["description"]
    assert specs["read_file"]["input_schema"]["required"] == ["path"]
    assert specs["read_file"]["input_schema"]["properties"]["start_line"] == {
        "type": "integer",
        "minimum": 1,
        "description": "First line to show (1-based).",
    }
    assert specs["edit_file"]["input_schema"]["required"] == ["path", "old_text", "new_text"]
    assert specs["finish"]["input_schema"]["required"] == ["summary"]
    assert len(BUILDER_TOOLS) == len(specs)
    assert set(specs) < {t.name for t in TOOLS}


def test_bound_keeps_head_and_tail() -> None:
    text = "".join(f"{n:05d}\n" for n in range(10_000))
    cut = bound(text, 1000)
    assert len(cut) <= 1000
    assert cut.startswith("00000\n")
    assert cut.endswith("09999\n")
    assert "characters cut: results are limited to 1000" in cut
    assert bound("short", 1000) == "short"


@pytest.mark.parametrize(
    ("name", "args", "summary"),
    [
        ("read_file", {"path": "a.py"}, "a.py"),
        ("read_file", {"path": "a.py", "start_line": 3, "end_line": 9}, "a.py:3-9"),
        ("run", {"command": "python -m pytest -q"}, "python -m pytest -q"),
        ("write_file", {"path": "a.py", "content": "abc"}, "a.py (3 chars)"),
        ("search", {"pattern": "x+"}, "/x+/ in ."),
        ("run", {"command": "x" * 200}, "x" * 79 + "…"),
        ("unknown", "not a dict", ""),
    ],
)
def test_describe_call(name: str, args: Any, summary: str) -> None:
    assert describe_call(name, args) == summary
