"""What every backend promises, checked on the local and the Docker backend alike."""

from __future__ import annotations

import logging
import os

import pytest

from process.exceptions import SandboxError, SandboxGone, SandboxStartFailed
from sandboxes.cache import WorkspaceArchive
from sandboxes.config import SandboxConfig
from sandboxes.wrapper import TIMEOUT_EXIT_CODE

from .conftest import SandboxMaker


def test_exec_reports_exit_code_and_both_streams(
    make_sandbox: SandboxMaker, sample_workspace: WorkspaceArchive
) -> None:
    sandbox = make_sandbox(sample_workspace)
    result = sandbox.exec("cat README.md; echo oops >&2; exit 3")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "# sample\n", "oops\n")
    assert not result.ok
    assert not result.timed_out
    assert result.duration > 0


def test_exec_takes_an_argv_a_cwd_and_extra_env(
    make_sandbox: SandboxMaker, sample_workspace: WorkspaceArchive
) -> None:
    sandbox = make_sandbox(sample_workspace)
    result = sandbox.exec(["sh", "-c", 'pwd; echo "$GREETING"'], cwd="src", env={"GREETING": "hi"})
    assert result.ok
    lines = result.stdout.splitlines()
    assert lines[0].endswith("/src")
    assert lines[1] == "hi"


def test_big_output_is_cut_in_the_middle(make_sandbox: SandboxMaker) -> None:
    sandbox = make_sandbox(config=SandboxConfig(max_output_bytes=1000))
    result = sandbox.exec("echo START; yes middle | head -n 100000; echo END")
    assert result.ok
    assert result.stdout.startswith("START\n")
    assert result.stdout.endswith("END\n")
    assert result.stdout_truncated == 6 + 700_000 + 4 - 1000
    assert f"[... {result.stdout_truncated} bytes cut ...]" in result.stdout


def test_an_oversized_patch_is_refused(
    make_sandbox: SandboxMaker, sample_workspace: WorkspaceArchive
) -> None:
    """A change bigger than ``max_patch_bytes`` (a build directory the repository forgot
    to ignore, say) is refused with a message that says so, never cut into a patch that
    would not apply; the same change under the limit exports whole."""
    config = SandboxConfig(max_patch_bytes=4096)
    sandbox = make_sandbox(sample_workspace, config=config)
    sandbox.write_file("small.txt", b"x\n" * 100)
    small = sandbox.export_patch()
    assert b"+++ b/small.txt" in small
    assert len(small) < 4096
    # A generated bundle in a directory that is not build output by name (build/ is left
    # out of every patch, sandboxes/patch.py), so only the size limit can stop it.
    sandbox.write_file("assets/bundle.js", b"var x = 1;\n" * 1000)
    with pytest.raises(SandboxError) as err:
        sandbox.export_patch()
    assert err.value.message == (
        "the patch is larger than 4096 bytes; is a build directory missing from .gitignore?"
    )
    assert not isinstance(err.value, SandboxGone)  # a refusal, not a lost sandbox
    assert sandbox.exec("true").ok  # and the sandbox is still there


def test_timeout_kills_the_command(make_sandbox: SandboxMaker) -> None:
    sandbox = make_sandbox(config=SandboxConfig(kill_grace=0.5))
    result = sandbox.exec("echo $$ > pid; exec sleep 1000", timeout=2)
    assert result.timed_out
    assert result.exit_code == TIMEOUT_EXIT_CODE
    assert not result.ok
    check = sandbox.exec('kill -0 "$(cat pid)" 2>/dev/null && echo alive || echo gone')
    assert check.stdout == "gone\n"


def test_the_workers_environment_does_not_leak(
    make_sandbox: SandboxMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTS_TEST_CANARY_TOKEN", "sk-canary-value")
    sandbox = make_sandbox()
    result = sandbox.exec("env")
    assert result.ok
    assert "AGENTS_TEST_CANARY_TOKEN" not in result.stdout
    assert "sk-canary-value" not in result.stdout
    assert os.environ["HOME"] not in {
        line.partition("=")[2] for line in result.stdout.splitlines() if line.startswith("HOME=")
    }


def test_files_round_trip(make_sandbox: SandboxMaker, sample_workspace: WorkspaceArchive) -> None:
    sandbox = make_sandbox(sample_workspace)
    data = bytes(range(256)) * 100
    sandbox.write_file("new/deeper/data.bin", data)
    assert sandbox.read_file("new/deeper/data.bin") == data
    assert sandbox.read_file("link_to_app.py") == sandbox.read_file("src/app.py")

    sandbox.write_file("bin/run.sh", b"#!/bin/sh\necho new\n")  # keeps its mode
    sandbox.write_file("tool.sh", b"#!/bin/sh\n", mode=0o755)
    modes = sandbox.exec("stat -c '%a %n' bin/run.sh tool.sh new/deeper/data.bin")
    assert modes.stdout.splitlines() == ["755 bin/run.sh", "755 tool.sh", "644 new/deeper/data.bin"]
    assert sandbox.exec("./bin/run.sh").stdout == "new\n"


def test_list_files_is_sorted_relative_and_skips_git(
    make_sandbox: SandboxMaker, sample_workspace: WorkspaceArchive
) -> None:
    sandbox = make_sandbox(sample_workspace)
    files = sandbox.list_files()
    assert files == sorted(files)
    assert "src/app.py" in files
    assert "link_to_app.py" in files
    assert "ünïcödé/naïve.txt" in files
    assert not any(f.startswith(".git/") for f in files)
    assert sandbox.list_files("src") == ["src/app.py", "src/old_name.py"]
    assert len(sandbox.list_files(limit=3)) == 3


def test_file_errors_are_the_usual_ones(
    make_sandbox: SandboxMaker, sample_workspace: WorkspaceArchive
) -> None:
    sandbox = make_sandbox(sample_workspace)
    with pytest.raises(FileNotFoundError):
        sandbox.read_file("no/such/file")
    with pytest.raises(IsADirectoryError):
        sandbox.read_file("src")
    with pytest.raises(IsADirectoryError):
        sandbox.write_file("src", b"x")
    for outside in ("/etc/passwd", "../outside", "src/../../outside"):
        with pytest.raises(ValueError, match="workspace"):
            sandbox.read_file(outside)
        with pytest.raises(ValueError, match="workspace"):
            sandbox.write_file(outside, b"x")
    with pytest.raises(FileNotFoundError):
        sandbox.list_files("missing-dir")


def test_a_closed_sandbox_is_gone(make_sandbox: SandboxMaker) -> None:
    sandbox = make_sandbox()
    sandbox.close()
    with pytest.raises(SandboxGone):
        sandbox.exec("true")
    with pytest.raises(SandboxGone):
        sandbox.read_file("x")
    with pytest.raises(SandboxGone):
        sandbox.start()
    sandbox.close()  # twice is fine


def test_local_backend_warns_every_time(caplog: pytest.LogCaptureFixture) -> None:
    from sandboxes.local_sandbox import LocalSandbox

    with caplog.at_level(logging.WARNING, logger="sandboxes.local_sandbox"):
        for run_id in ("one", "two"):
            with LocalSandbox(run_id):
                pass
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("does NOT isolate" in w for w in warnings)


def test_a_broken_workspace_archive_fails_the_start(make_sandbox: SandboxMaker) -> None:
    broken = WorkspaceArchive(archive=b"this is not a tar.gz", base_commit="0" * 40)
    with pytest.raises(SandboxStartFailed) as err:
        make_sandbox(broken, run_id="broken-archive")
    assert err.value.run_id == "broken-archive"
