"""What is particular to the local forge: layout, records, locking, permissions."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from jobs.forge import CheckRun, CheckSummary, make_forge
from jobs.forge import git as gitops
from jobs.forge import local as local_module
from jobs.forge.local import LocalForge
from process.exceptions import ForgeRejected, MergeRejected, PushRejected, RefLocked
from tests.forge.conftest import REPO, MakePatch, first_change, git


def committed(local_forge: LocalForge, base_commit: str, make_patch: MakePatch, work: Path) -> str:
    """A commit of ``first_change`` on ``base_commit``, made in ``work`` (not pushed)."""
    gitops.init_workdir(work)
    local_forge.fetch(REPO, work, [base_commit])
    sha = gitops.commit_patch(
        work,
        make_patch(base_commit, first_change),
        parent=base_commit,
        message="change\n",
        author=gitops.BOT_IDENTITY,
    )
    assert sha is not None
    return sha


@pytest.fixture
def pushed_branch(
    local_forge: LocalForge, base_commit: str, make_patch: MakePatch, tmp_path: Path
) -> str:
    sha = committed(local_forge, base_commit, make_patch, tmp_path / "w")
    local_forge.push(REPO, tmp_path / "w", sha, "agents/1-change")
    return "agents/1-change"


def test_layout_and_records(local_forge: LocalForge, pushed_branch: str, tmp_path: Path) -> None:
    pr = local_forge.create_pr(
        REPO, branch=pushed_branch, base="main", title="Change", body="Body", draft=True
    )
    root = tmp_path / "forge"
    assert (root / "acme" / "api.git" / "HEAD").is_file()
    record = json.loads((root / "acme" / "api.forge" / "pulls" / "1.json").read_text())
    assert record["branch"] == pushed_branch
    assert record["draft"] is True
    assert pr.url == (root / "acme" / "api.forge" / "pulls" / "1.json").as_uri()
    assert local_forge.default_branch(REPO) == "main"
    assert local_forge.clone_url(REPO).startswith("file://")
    assert local_forge.find_pr(REPO, "agents/other") is None
    assert [p.number for p in local_forge.list_prs(REPO)] == [1]


def test_create_repo_is_idempotent(
    local_forge: LocalForge, sample_source: Path, bare: Path
) -> None:
    head = git(bare, "rev-parse", "main")
    assert local_forge.create_repo(REPO, source=sample_source) == bare
    assert git(bare, "rev-parse", "main") == head
    assert git(bare, "ls-tree", "--name-only", "main").split() == ["README.md", "app", "docs"]


def test_concurrent_creates_open_one_pr(local_forge: LocalForge, pushed_branch: str) -> None:
    numbers: list[int] = []

    def create() -> None:
        pr = local_forge.create_pr(
            REPO, branch=pushed_branch, base="main", title="t", body="b", draft=True
        )
        numbers.append(pr.number)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert numbers == [1, 1, 1, 1]
    assert len(local_forge.list_prs(REPO)) == 1


def test_refusals(local_forge: LocalForge, pushed_branch: str) -> None:
    with pytest.raises(ForgeRejected, match="does not exist"):
        local_forge.create_pr(
            REPO, branch="agents/nope", base="main", title="t", body="", draft=True
        )
    with pytest.raises(ForgeRejected) as caught:
        local_forge.get_pr(REPO, 9)
    assert caught.value.status == 404
    for bad in ["../etc", "acme/../x", "acme", "acme/api/extra", "acme/.git"]:
        with pytest.raises(ForgeRejected):
            local_forge.repo_path(bad)
    with pytest.raises(ForgeRejected, match="no such repository"):
        local_forge.default_branch("acme/missing")
    pr = local_forge.create_pr(
        REPO, branch=pushed_branch, base="main", title="t", body="", draft=False
    )
    with pytest.raises(MergeRejected, match="not supported"):
        local_forge.merge(REPO, pr.number, method="rebase")


def test_bare_repositories_refuse_force_pushes(
    local_forge: LocalForge, bare: Path, pushed_branch: str, base_commit: str, tmp_path: Path
) -> None:
    """A forced push that would rewrite the branch is refused by the repository itself,
    whoever sends it, and the branch stays where it was."""
    work = tmp_path / "w"
    pushed = git(bare, "rev-parse", f"refs/heads/{pushed_branch}")
    tree = git(work, "rev-parse", f"{base_commit}^{{tree}}")
    rewritten = git(work, "commit-tree", tree, "-p", base_commit, "-m", "rewritten history")
    forced = subprocess.run(
        ["git", "push", "--force", local_forge.clone_url(REPO), f"{rewritten}:{pushed_branch}"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert forced.returncode != 0
    assert "non-fast-forward" in forced.stderr
    assert git(bare, "rev-parse", f"refs/heads/{pushed_branch}") == pushed
    with pytest.raises(PushRejected):  # and the product's own push does not force either
        local_forge.push(REPO, work, rewritten, pushed_branch)
    assert git(bare, "rev-parse", f"refs/heads/{pushed_branch}") == pushed


def test_permissions(local_forge: LocalForge, tmp_path: Path) -> None:
    assert local_forge.permission(REPO, "anyone") == "write"
    local_forge.set_permission(REPO, "guest", "read")
    assert local_forge.permission(REPO, "guest") == "read"
    strict = LocalForge(tmp_path / "forge", default_permission="none")
    assert strict.permission(REPO, "anyone") == "none"
    assert strict.permission(REPO, "guest") == "read"


def test_checks_are_recorded_per_commit(local_forge: LocalForge) -> None:
    sha = "c" * 40
    assert local_forge.checks(REPO, sha) == CheckSummary(sha=sha, state="none", runs=[], failing=[])
    local_forge.set_checks(REPO, sha, [CheckRun.from_check_run("tests", "completed", "success")])
    assert local_forge.checks(REPO, sha).state == "success"


def test_check_summary_rules() -> None:
    ok = CheckRun.from_check_run("a", "completed", "success")
    skipped = CheckRun.from_check_run("b", "completed", "skipped")
    running = CheckRun.from_check_run("c", "in_progress", None)
    failed = CheckRun.from_check_run("d", "completed", "cancelled")
    broken = CheckRun.from_status("e", "error")
    assert CheckSummary.of("s", []).state == "none"
    assert CheckSummary.of("s", [ok, skipped]).state == "success"
    assert CheckSummary.of("s", [ok, running, failed]).state == "pending"
    summary = CheckSummary.of("s", [ok, failed, broken])
    assert summary.state == "failure"
    assert summary.done
    assert [r.name for r in summary.failing] == ["d", "e"]
    long = CheckRun.from_check_run("f", "completed", "failure", summary="x" * 5000)
    assert long.summary is not None
    assert len(long.summary) == 2000


def test_make_forge(tmp_path: Path) -> None:
    assert isinstance(make_forge("local", local_root=tmp_path), LocalForge)
    with pytest.raises(ValueError, match="GITHUB_TOKEN"):
        make_forge("github")
    github = make_forge("github", token="t", github_url="http://127.0.0.1:1")
    assert github.kind == "github"
    github.close()


@pytest.mark.parametrize("lock_age", [60.0, 0.0])
def test_a_push_clears_a_ref_lock_a_killed_push_left_and_only_that(
    local_forge: LocalForge,
    bare: Path,
    base_commit: str,
    make_patch: MakePatch,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    lock_age: float,
) -> None:
    """A push killed with its worker leaves ``<ref>.lock`` in the bare repository; with
    it every later push of the branch fails "cannot lock ref", so the resumed run did.
    A young lock may be a push in progress: it is left alone, and the push gives up."""
    monkeypatch.setattr(local_module, "PUSH_RETRY_SECONDS", 0.0)
    monkeypatch.setattr(local_module, "PUSH_ATTEMPTS", 3)
    work = tmp_path / "w"
    sha = committed(local_forge, base_commit, make_patch, work)
    lock = bare / "refs" / "heads" / "agents" / "2-change.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")
    then = time.time() - lock_age
    os.utime(lock, (then, then))

    with pytest.raises(RefLocked, match="cannot lock ref"):  # what git itself says
        gitops.push(work, local_forge.clone_url(REPO), sha, "agents/2-change")
    if lock_age > local_module.STALE_REF_LOCK_SECONDS:
        local_forge.push(REPO, work, sha, "agents/2-change")
        assert not lock.exists()
        assert git(bare, "rev-parse", "agents/2-change") == sha
    else:
        with pytest.raises(RefLocked):
            local_forge.push(REPO, work, sha, "agents/2-change")
        assert lock.exists()
