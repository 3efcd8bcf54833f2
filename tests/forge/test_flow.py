"""The blueprint's forge steps end to end, against the local forge and a fake GitHub.

Every test here runs twice: once on :class:`LocalForge`, once through real PyGithub
and real git-over-HTTP against :class:`FakeGitHub`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from fakes.github.server import FakeGitHub
from jobs.forge import (
    CheckRun,
    Forge,
    Identity,
    PublishRequest,
    finish_pr,
    poll_ci,
    push_and_open_pr,
)
from jobs.forge.local import LocalForge
from process.exceptions import MergeRejected, NothingToPublish, PatchDoesNotApply
from tests.forge.conftest import (
    LOGO,
    REPO,
    MakePatch,
    first_change,
    git,
    second_change,
)

SetChecks = Callable[[str, list[tuple[str, str, str | None]]], None]

BRANCH = "agents/42-make-the-retry-limit-configurable-please"
JANE = Identity("Jane Doe", "jane@example.com")


@pytest.fixture(params=["local", "github"])
def forge(request: pytest.FixtureRequest) -> Forge:
    if request.param == "local":
        forge: Forge = request.getfixturevalue("local_forge")
    else:
        forge = request.getfixturevalue("github_forge")
    return forge


@pytest.fixture
def set_checks(forge: Forge, request: pytest.FixtureRequest) -> SetChecks:
    """Record (name, status, conclusion) check runs on a commit, on either forge."""

    def apply(sha: str, runs: list[tuple[str, str, str | None]]) -> None:
        if isinstance(forge, LocalForge):
            forge.set_checks(REPO, sha, [CheckRun.from_check_run(n, s, c) for n, s, c in runs])
        else:
            fake: FakeGitHub = request.getfixturevalue("fake_github")
            fake.set_check_runs(
                REPO, sha, [{"name": n, "status": s, "conclusion": c} for n, s, c in runs]
            )

    return apply


@pytest.fixture
def first_request(make_patch: MakePatch, base_commit: str) -> PublishRequest:
    return PublishRequest(
        run_id=42,
        repo=REPO,
        request="make the retry limit configurable, please",
        summary="Make the retry limit configurable\n\nRETRIES now comes from the environment.",
        patch=make_patch(base_commit, first_change),
        base_commit=base_commit,
        requester="@jane",
        thread_url="https://acme.slack.com/archives/C1/p123",
        co_authors=(JANE,),
    )


def branch_commits(bare: Path, branch: str, base: str) -> list[str]:
    return git(bare, "rev-list", f"{base}..refs/heads/{branch}").split()


def open_prs(forge: Forge) -> int:
    if isinstance(forge, LocalForge):
        return sum(pr.state == "open" for pr in forge.list_prs(REPO))
    assert forge.find_pr(REPO, BRANCH) is not None
    return 1


def test_publish_commits_pushes_and_opens_a_draft_pr(
    forge: Forge, first_request: PublishRequest, tmp_path: Path, bare: Path, base_commit: str
) -> None:
    result = push_and_open_pr(forge, first_request, tmp_path / "publish")

    assert result.branch == BRANCH
    assert result.committed
    assert result.pr_created
    assert result.pr.draft
    assert result.pr.state == "open"
    assert not result.pr.merged
    assert result.pr.branch == result.branch
    assert result.pr.base == "main"
    assert result.pr.head_sha == result.head_sha
    assert result.pr.title == "Make the retry limit configurable, please"
    assert "https://acme.slack.com/archives/C1/p123" in result.pr.body
    assert "@jane" in result.pr.body

    assert git(bare, "rev-parse", f"refs/heads/{result.branch}") == result.head_sha
    assert git(bare, "rev-parse", f"{result.head_sha}^") == base_commit
    files = git(bare, "ls-tree", "-r", "--name-only", result.head_sha).splitlines()
    assert "docs/retry-limit.txt" in files
    assert "docs/retries.txt" not in files
    modes = {
        line.split("\t")[1]: line.split()[0]
        for line in git(bare, "ls-tree", "-r", result.head_sha).splitlines()
    }
    assert modes["run.sh"] == "100755"
    assert modes["docs/latest.txt"] == "120000"
    blob = git(bare, "rev-parse", f"{result.head_sha}:assets/logo.bin")
    assert _blob(bare, blob) == LOGO

    message = git(bare, "log", "-1", "--format=%B", result.head_sha)
    assert message.startswith("Make the retry limit configurable\n\nRETRIES now comes")
    trailers = git(bare, "log", "-1", "--format=%(trailers)", result.head_sha)
    assert "Agents-Run: #42 iteration 1" in trailers
    assert "Co-authored-by: Jane Doe <jane@example.com>" in trailers
    assert git(bare, "log", "-1", "--format=%an <%ae>", result.head_sha) == (
        "agents[bot] <agents-bot@users.noreply.github.com>"
    )


def _blob(bare: Path, sha: str) -> bytes:
    return subprocess.run(
        ["git", "cat-file", "blob", sha], cwd=bare, check=True, capture_output=True
    ).stdout


def test_publish_again_makes_no_second_commit_or_pr(
    forge: Forge, first_request: PublishRequest, tmp_path: Path, bare: Path, base_commit: str
) -> None:
    first = push_and_open_pr(forge, first_request, tmp_path / "publish")
    again = push_and_open_pr(forge, first_request, tmp_path / "publish")
    # A different worker, with an empty workdir, resuming the same run.
    elsewhere = push_and_open_pr(forge, first_request, tmp_path / "other-worker")

    for result in (again, elsewhere):
        assert not result.committed
        assert not result.pr_created
        assert result.head_sha == first.head_sha
        assert result.pr.number == first.pr.number
    assert branch_commits(bare, first.branch, base_commit) == [first.head_sha]
    assert open_prs(forge) == 1


def test_publish_resumes_after_a_crash_between_push_and_pr(
    forge: Forge, first_request: PublishRequest, tmp_path: Path, bare: Path, base_commit: str
) -> None:
    class Crash(Exception):
        pass

    class CrashOnCreate:
        """The worker dies right after the push, before the PR exists."""

        def __init__(self, inner: Forge) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> object:
            return getattr(self._inner, name)

        def create_pr(self, *args: object, **kwargs: object) -> None:
            raise Crash

    with pytest.raises(Crash):
        push_and_open_pr(CrashOnCreate(forge), first_request, tmp_path / "publish")  # type: ignore[arg-type]
    pushed = git(bare, "rev-parse", f"refs/heads/{BRANCH}")

    result = push_and_open_pr(forge, first_request, tmp_path / "publish")

    assert result.pr_created
    assert not result.committed
    assert result.head_sha == pushed
    assert branch_commits(bare, result.branch, base_commit) == [pushed]


def test_rework_adds_a_commit_on_top_without_force_push(
    forge: Forge,
    first_request: PublishRequest,
    make_patch: MakePatch,
    tmp_path: Path,
    bare: Path,
    base_commit: str,
) -> None:
    first = push_and_open_pr(forge, first_request, tmp_path / "publish")
    rework = replace(
        first_request,
        iteration=2,
        summary="Read the limit from config.py",
        patch=make_patch(first.head_sha, second_change),
    )

    second = push_and_open_pr(forge, rework, tmp_path / "publish")

    assert second.committed
    assert not second.pr_created
    assert second.pr.number == first.pr.number
    assert branch_commits(bare, first.branch, base_commit) == [second.head_sha, first.head_sha]
    assert git(bare, "rev-parse", f"{second.head_sha}^") == first.head_sha
    assert "Read the limit from config.py" in second.pr.body
    assert forge.get_pr(REPO, first.pr.number).head_sha == second.head_sha
    # Publishing iteration 2 again changes nothing.
    assert push_and_open_pr(forge, rework, tmp_path / "publish").head_sha == second.head_sha


def test_rework_with_a_patch_against_the_base_is_applied_three_way(
    forge: Forge,
    first_request: PublishRequest,
    make_patch: MakePatch,
    tmp_path: Path,
    bare: Path,
    base_commit: str,
) -> None:
    first = push_and_open_pr(forge, first_request, tmp_path / "publish")

    def both(work: Path) -> None:
        first_change(work)
        second_change(work)

    cumulative = replace(
        first_request, iteration=2, patch=make_patch(base_commit, both), patch_base=base_commit
    )
    second = push_and_open_pr(forge, cumulative, tmp_path / "publish")

    assert git(bare, "rev-parse", f"{second.head_sha}^") == first.head_sha
    assert git(bare, "diff", "--name-only", first.head_sha, second.head_sha) == "app/config.py"


def test_rework_that_changes_nothing_pushes_nothing(
    forge: Forge, first_request: PublishRequest, tmp_path: Path, bare: Path, base_commit: str
) -> None:
    first = push_and_open_pr(forge, first_request, tmp_path / "publish")
    same = replace(first_request, iteration=2, patch=b"")

    result = push_and_open_pr(forge, same, tmp_path / "publish")

    assert not result.changed
    assert not result.committed
    assert result.head_sha == first.head_sha
    assert branch_commits(bare, first.branch, base_commit) == [first.head_sha]


def test_an_empty_patch_is_not_published(
    forge: Forge, first_request: PublishRequest, tmp_path: Path
) -> None:
    with pytest.raises(NothingToPublish):
        push_and_open_pr(forge, replace(first_request, patch=b""), tmp_path / "publish")
    assert forge.find_pr(REPO, first_request.branch_name) is None


def test_a_patch_that_conflicts_with_the_branch_is_refused(
    forge: Forge, first_request: PublishRequest, make_patch: MakePatch, tmp_path: Path
) -> None:
    first = push_and_open_pr(forge, first_request, tmp_path / "publish")

    def conflicting(work: Path) -> None:
        (work / "app" / "client.py").write_text("RETRIES = 99\n")

    base = first_request.base_commit
    bad = replace(first_request, iteration=2, patch=make_patch(base, conflicting), patch_base=base)
    with pytest.raises(PatchDoesNotApply, match=r"conflicts with .*app/client\.py"):
        push_and_open_pr(forge, bad, tmp_path / "publish")
    stale = replace(first_request, iteration=2, patch=make_patch(base, conflicting))
    with pytest.raises(PatchDoesNotApply, match="does not apply"):
        push_and_open_pr(forge, stale, tmp_path / "publish")
    assert forge.get_pr(REPO, first.pr.number).head_sha == first.head_sha


def test_ready_for_review_when_not_a_draft(
    forge: Forge, first_request: PublishRequest, tmp_path: Path
) -> None:
    result = push_and_open_pr(forge, replace(first_request, draft=False), tmp_path / "publish")
    assert not result.pr.draft


def test_approve_marks_ready_then_merges_into_the_base(
    forge: Forge, first_request: PublishRequest, tmp_path: Path, bare: Path, base_commit: str
) -> None:
    result = push_and_open_pr(forge, first_request, tmp_path / "publish")

    ready = finish_pr(forge, REPO, result.pr.number, action="ready")
    assert not ready.draft
    assert not ready.merged
    assert finish_pr(forge, REPO, result.pr.number, action="ready") == ready

    merged = finish_pr(
        forge,
        REPO,
        result.pr.number,
        action="merge",
        merge_method="merge",
        expected_sha=result.head_sha,
    )
    assert merged.merged
    assert merged.state == "closed"
    assert merged.merge_sha
    main = git(bare, "rev-parse", "refs/heads/main")
    assert main == merged.merge_sha
    assert git(bare, "rev-list", "--parents", "-n1", main).split()[1:] == [
        base_commit,
        result.head_sha,
    ]
    assert _blob(bare, git(bare, "rev-parse", "main:assets/logo.bin")) == LOGO
    # Approving again is a no-op.
    assert finish_pr(forge, REPO, result.pr.number, action="merge").merge_sha == merged.merge_sha
    assert git(bare, "rev-parse", "refs/heads/main") == main


def test_squash_merge_from_a_draft(
    forge: Forge, first_request: PublishRequest, tmp_path: Path, bare: Path, base_commit: str
) -> None:
    result = push_and_open_pr(forge, first_request, tmp_path / "publish")

    merged = finish_pr(forge, REPO, result.pr.number, action="merge", merge_method="squash")

    main = git(bare, "rev-parse", "refs/heads/main")
    assert merged.merge_sha == main
    assert git(bare, "rev-list", "--parents", "-n1", main).split()[1:] == [base_commit]
    assert git(bare, "rev-parse", "main^{tree}") == git(
        bare, "rev-parse", f"{result.head_sha}^{{tree}}"
    )


def test_merge_refuses_a_head_that_moved(
    forge: Forge,
    first_request: PublishRequest,
    make_patch: MakePatch,
    tmp_path: Path,
) -> None:
    first = push_and_open_pr(forge, first_request, tmp_path / "publish")
    push_and_open_pr(
        forge,
        replace(first_request, iteration=2, patch=make_patch(first.head_sha, second_change)),
        tmp_path / "publish",
    )

    with pytest.raises(MergeRejected):
        finish_pr(forge, REPO, first.pr.number, action="merge", expected_sha=first.head_sha)
    assert not forge.get_pr(REPO, first.pr.number).merged


def test_watch_ci_until_success(
    forge: Forge, first_request: PublishRequest, tmp_path: Path, set_checks: SetChecks
) -> None:
    sha = push_and_open_pr(forge, first_request, tmp_path / "publish").head_sha
    script = [
        [("tests", "queued", None)],
        [("tests", "in_progress", None), ("lint", "completed", "success")],
        [("tests", "completed", "success"), ("lint", "completed", "success")],
    ]
    set_checks(sha, [])
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        clock.now += seconds
        set_checks(sha, script.pop(0))

    seen: list[str] = []
    outcome = poll_ci(
        forge,
        REPO,
        sha,
        interval=10,
        settle=60,
        clock=clock,
        sleep=sleep,
        on_poll=lambda s: seen.append(s.state),
    )

    assert outcome.state == "success"
    assert seen == ["none", "pending", "pending", "success"]
    assert {run.name for run in outcome.checks.runs} == {"tests", "lint"}
    assert outcome.checks.failing == []


def test_watch_ci_reports_failing_checks(
    forge: Forge, first_request: PublishRequest, tmp_path: Path, set_checks: SetChecks
) -> None:
    sha = push_and_open_pr(forge, first_request, tmp_path / "publish").head_sha
    set_checks(
        sha,
        [
            ("unit tests", "completed", "failure"),
            ("types", "completed", "timed_out"),
            ("lint", "completed", "success"),
            ("docs", "completed", "skipped"),
        ],
    )

    outcome = poll_ci(forge, REPO, sha, clock=FakeClock(), sleep=_no_sleep)

    assert outcome.state == "failure"
    assert outcome.polls == 1
    assert [run.name for run in outcome.checks.failing] == ["unit tests", "types"]


def test_watch_ci_with_no_checks_settles_on_none_and_times_out(
    forge: Forge, first_request: PublishRequest, tmp_path: Path, set_checks: SetChecks
) -> None:
    sha = push_and_open_pr(forge, first_request, tmp_path / "publish").head_sha
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        clock.now += seconds

    none = poll_ci(forge, REPO, sha, interval=15, settle=60, clock=clock, sleep=sleep)
    assert none.state == "none"
    assert none.polls == 5

    set_checks(sha, [("tests", "in_progress", None)])
    stuck = poll_ci(forge, REPO, sha, interval=15, timeout=100, clock=clock, sleep=sleep)
    assert stuck.state == "timed_out"
    assert stuck.checks.state == "pending"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _no_sleep(seconds: float) -> None:
    raise AssertionError("watch_ci should not wait once the checks are done")


def test_publish_borrows_objects_from_a_local_mirror(
    forge: Forge, first_request: PublishRequest, tmp_path: Path, bare: Path, base_commit: str
) -> None:
    workdir = tmp_path / "publish"

    result = push_and_open_pr(forge, first_request, workdir, reference=bare)

    alternates = (workdir / ".git" / "objects" / "info" / "alternates").read_text()
    assert alternates.strip() == str((bare / "objects").resolve())
    assert git(bare, "rev-parse", f"refs/heads/{result.branch}") == result.head_sha
    assert git(workdir, "cat-file", "-t", base_commit) == "commit"
