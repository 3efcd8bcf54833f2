"""GitHubForge through real PyGithub (and real git over HTTP) against FakeGitHub."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fakes.github.server import FakeGitHub
from jobs.forge import PublishRequest, finish_pr, may_approve, poll_ci, push_and_open_pr
from jobs.forge.github import GitHubForge
from jobs.forge.retry import ForgeRetry
from process.exceptions import ForgeRejected, ForgeUnavailable, MergeRejected
from tests.forge.conftest import REPO, TOKEN, MakePatch, first_change, git

BRANCH = "agents/7-add-a-retry-setting"


@pytest.fixture
def request_7(make_patch: MakePatch, base_commit: str) -> PublishRequest:
    return PublishRequest(
        run_id=7,
        repo=REPO,
        request="add a retry setting",
        summary="Add a retry setting",
        patch=make_patch(base_commit, first_change),
        base_commit=base_commit,
    )


def test_the_flow_makes_the_github_calls_it_should(
    github_forge: GitHubForge,
    fake_github: FakeGitHub,
    request_7: PublishRequest,
    tmp_path: Path,
    bare: Path,
) -> None:
    result = push_and_open_pr(github_forge, request_7, tmp_path / "publish")
    sha = result.head_sha
    fake_github.set_check_runs(REPO, sha, [{"name": "tests", "status": "in_progress"}])
    fake_github.set_statuses(REPO, sha, [{"context": "ci/lint", "state": "success"}])

    def ci_finishes(seconds: float) -> None:
        fake_github.set_check_runs(REPO, sha, [{"name": "tests", "conclusion": "success"}])

    outcome = poll_ci(github_forge, REPO, sha, sleep=ci_finishes)
    merged = finish_pr(
        github_forge,
        REPO,
        result.pr.number,
        action="merge",
        merge_method="squash",
        expected_sha=sha,
    )

    assert outcome.state == "success"
    assert {(r.name, r.kind) for r in outcome.checks.runs} == {
        ("tests", "check_run"),
        ("ci/lint", "status"),
    }
    assert merged.merged
    assert git(bare, "rev-parse", "main^{tree}") == git(bare, "rev-parse", f"{sha}^{{tree}}")

    calls = fake_github.api_calls()
    checks = f"/repos/{REPO}/commits/{sha}/check-runs"
    status = f"/repos/{REPO}/commits/{sha}/status"
    expected_in_order = [
        ("GET", f"/repos/{REPO}"),
        ("GET", f"/repos/{REPO}/pulls"),
        ("POST", f"/repos/{REPO}/pulls"),
        ("GET", checks),
        ("GET", status),
        ("GET", checks),
        ("POST", "/graphql"),
        ("PUT", f"/repos/{REPO}/pulls/1/merge"),
    ]
    assert _is_subsequence(expected_in_order, calls), calls
    assert calls.count(("POST", f"/repos/{REPO}/pulls")) == 1
    assert calls.count(("GET", f"/repos/{REPO}")) == 1  # the repository is read once

    (create,) = fake_github.calls("POST", r"/pulls$")
    assert create.body["head"] == BRANCH
    assert create.body["base"] == "main"
    assert create.body["draft"] is True
    (lookup,) = fake_github.calls("GET", r"/pulls$")
    assert lookup.query["head"] == f"acme:{BRANCH}"
    assert lookup.query["state"] == "open"
    (ready,) = fake_github.calls("POST", "^/graphql$")
    assert "markPullRequestReadyForReview" in ready.body["query"]
    assert ready.body["variables"]["input"]["pullRequestId"].startswith("PR_")
    (merge,) = fake_github.calls("PUT", r"/merge$")
    assert merge.body == {"merge_method": "squash", "sha": sha}
    assert all(r.authorized for r in fake_github.requests)
    assert all(
        r.headers.get("User-Agent") == "agents-bot" for r in fake_github.calls(path="^/repos")
    )


def _is_subsequence(needles: list[tuple[str, str]], haystack: list[tuple[str, str]]) -> bool:
    it = iter(haystack)
    return all(any(needle == item for item in it) for needle in needles)


def test_a_502_on_create_is_retried_and_one_pr_exists(
    github_forge: GitHubForge,
    fake_github: FakeGitHub,
    request_7: PublishRequest,
    tmp_path: Path,
    sleeps: list[float],
) -> None:
    fake_github.fail_next("POST", r"/pulls$", 502)

    result = push_and_open_pr(github_forge, request_7, tmp_path / "publish")

    assert len(fake_github.pulls(REPO)) == 1
    assert result.pr.number == 1
    assert [r.status for r in fake_github.calls("POST", r"/pulls$")] == [502, 201]
    assert sleeps == [0.5]


def test_a_lost_create_response_is_found_not_repeated(
    github_forge: GitHubForge,
    fake_github: FakeGitHub,
    request_7: PublishRequest,
    tmp_path: Path,
) -> None:
    """GitHub created the PR but the response was a 502: look it up, do not post again."""
    fake_github.fail_next("POST", r"/pulls$", 502, after=True)

    result = push_and_open_pr(github_forge, request_7, tmp_path / "publish")

    assert [pr["number"] for pr in fake_github.pulls(REPO)] == [1]
    assert result.pr.number == 1
    assert result.pr.draft
    assert [r.status for r in fake_github.calls("POST", r"/pulls$")] == [502]


def test_an_outage_gives_up_and_a_rerun_finishes_without_a_second_commit(
    github_forge: GitHubForge,
    fake_github: FakeGitHub,
    request_7: PublishRequest,
    tmp_path: Path,
    sleeps: list[float],
    bare: Path,
    base_commit: str,
) -> None:
    fake_github.fail_next("POST", r"/pulls$", 503, count=4)

    with pytest.raises(ForgeUnavailable) as caught:
        push_and_open_pr(github_forge, request_7, tmp_path / "publish")
    assert caught.value.attempts == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert fake_github.pulls(REPO) == []

    result = push_and_open_pr(github_forge, request_7, tmp_path / "publish")

    assert result.pr_created
    assert not result.committed
    assert len(fake_github.pulls(REPO)) == 1
    assert git(bare, "rev-list", f"{base_commit}..refs/heads/{BRANCH}").split() == [result.head_sha]


def test_a_push_to_a_branch_another_push_holds_is_retried(
    fake_github: FakeGitHub,
    request_7: PublishRequest,
    tmp_path: Path,
    sleeps: list[float],
    bare: Path,
) -> None:
    """ "cannot lock ref": another push to the branch (one from a killed worker, say) is
    in flight. A retry, not a failed run."""
    lock = bare / "refs" / "heads" / f"{BRANCH}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")

    def wait(seconds: float) -> None:
        sleeps.append(seconds)
        lock.unlink(missing_ok=True)  # the other push finishes

    policy = ForgeRetry(attempts=4, initial_delay=0.5, sleep=wait)
    with GitHubForge(TOKEN, base_url=fake_github.base_url, retry=policy, throttle=False) as forge:
        result = push_and_open_pr(forge, request_7, tmp_path / "publish")

    assert result.committed
    assert sleeps == [0.5]
    assert git(bare, "rev-parse", f"refs/heads/{BRANCH}") == result.head_sha


def test_an_existing_pr_is_returned_instead_of_a_second(
    github_forge: GitHubForge, fake_github: FakeGitHub, request_7: PublishRequest, tmp_path: Path
) -> None:
    first = push_and_open_pr(github_forge, request_7, tmp_path / "publish").pr

    again = github_forge.create_pr(
        REPO, branch=BRANCH, base="main", title="t", body="b", draft=True
    )

    assert again.number == first.number
    assert [r.status for r in fake_github.calls("POST", r"/pulls$")] == [201, 422]
    assert len(fake_github.pulls(REPO)) == 1


def test_a_repository_without_draft_prs_gets_a_ready_one(
    github_forge: GitHubForge, fake_github: FakeGitHub, request_7: PublishRequest, tmp_path: Path
) -> None:
    fake_github.draft_prs = False

    result = push_and_open_pr(github_forge, request_7, tmp_path / "publish")

    assert not result.pr.draft
    assert [r.body["draft"] for r in fake_github.calls("POST", r"/pulls$")] == [True, False]


def test_lost_responses_on_ready_and_merge_are_recovered(
    github_forge: GitHubForge,
    fake_github: FakeGitHub,
    request_7: PublishRequest,
    tmp_path: Path,
    bare: Path,
) -> None:
    pr = push_and_open_pr(github_forge, request_7, tmp_path / "publish").pr
    fake_github.fail_next("POST", "^/graphql$", 502, after=True)
    fake_github.fail_next("PUT", r"/merge$", 500, after=True)

    merged = finish_pr(github_forge, REPO, pr.number, action="merge", merge_method="merge")

    assert merged.merged
    assert not merged.draft
    assert len(fake_github.calls("POST", "^/graphql$")) == 1
    assert len(fake_github.calls("PUT", r"/merge$")) == 1
    assert git(bare, "rev-parse", "main") == merged.merge_sha


def test_merging_a_moved_head_is_rejected(
    github_forge: GitHubForge, fake_github: FakeGitHub, request_7: PublishRequest, tmp_path: Path
) -> None:
    pr = push_and_open_pr(github_forge, request_7, tmp_path / "publish").pr
    github_forge.mark_ready(REPO, pr.number)

    with pytest.raises(MergeRejected) as caught:
        github_forge.merge(REPO, pr.number, sha="0" * 40)
    assert caught.value.status == 409
    assert not github_forge.get_pr(REPO, pr.number).merged


def test_rate_limits_wait_as_long_as_github_asks(
    github_forge: GitHubForge, fake_github: FakeGitHub, sleeps: list[float]
) -> None:
    fake_github.fail_next("GET", r"/check-runs$", 429, retry_after=7)
    fake_github.fail_next("GET", r"/status$", 403, retry_after=90)

    summary = github_forge.checks(REPO, "a" * 40)

    assert summary.state == "none"
    assert sleeps == [7.0, 30.0]  # Retry-After, capped at the policy's max_delay


def test_check_runs_and_statuses_add_up(github_forge: GitHubForge, fake_github: FakeGitHub) -> None:
    sha = "b" * 40
    fake_github.set_check_runs(
        REPO,
        sha,
        [
            {
                "name": "pytest",
                "conclusion": "failure",
                "output": {"title": "2 failed", "summary": "test_retry, test_limit"},
            },
            {"name": "mypy", "conclusion": "neutral"},
        ],
    )
    fake_github.set_statuses(
        REPO,
        sha,
        [
            {"context": "ci/jenkins", "state": "error", "target_url": "https://ci/1"},
            {"context": "ci/lint", "state": "success"},
        ],
    )

    summary = github_forge.checks(REPO, sha)

    assert summary.state == "failure"
    assert [(r.name, r.kind) for r in summary.failing] == [
        ("pytest", "check_run"),
        ("ci/jenkins", "status"),
    ]
    assert summary.failing[0].summary == "2 failed\ntest_retry, test_limit"
    assert summary.failing[1].url == "https://ci/1"


def test_permissions(github_forge: GitHubForge, fake_github: FakeGitHub) -> None:
    for login, level in [
        ("ann", "admin"),
        ("max", "maintain"),
        ("wes", "write"),
        ("tia", "triage"),
    ]:
        fake_github.set_permission(REPO, login, level)

    assert github_forge.permission(REPO, "ann") == "admin"
    assert github_forge.permission(REPO, "max") == "write"
    assert github_forge.permission(REPO, "wes") == "write"
    assert github_forge.permission(REPO, "tia") == "read"
    assert github_forge.permission(REPO, "stranger") == "none"
    assert may_approve(github_forge, REPO, "wes")
    assert not may_approve(github_forge, REPO, "tia")
    assert ("GET", f"/repos/{REPO}/collaborators/wes/permission") in fake_github.api_calls()


def test_a_bad_token_is_rejected_at_once(fake_github: FakeGitHub, sleeps: list[float]) -> None:
    wrong = "ghp_wrongWRONGwrong000"
    policy = ForgeRetry(sleep=sleeps.append)
    with (
        GitHubForge(wrong, base_url=fake_github.base_url, retry=policy, throttle=False) as forge,
        pytest.raises(ForgeRejected) as caught,
    ):
        forge.default_branch(REPO)
    assert caught.value.status == 401
    assert "Bad credentials" in str(caught.value)
    assert wrong not in str(caught.value)
    assert sleeps == []


def test_an_unreachable_github_is_retried_then_unavailable(sleeps: list[float]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy = ForgeRetry(attempts=3, initial_delay=1, sleep=sleeps.append)
    url = f"http://127.0.0.1:{port}"
    with (
        GitHubForge(TOKEN, base_url=url, retry=policy, timeout=2) as forge,
        pytest.raises(ForgeUnavailable) as caught,
    ):
        forge.default_branch(REPO)
    assert caught.value.attempts == 3
    assert sleeps == [1.0, 2.0]
    assert TOKEN not in str(caught.value)


def test_unknown_repository_is_rejected(github_forge: GitHubForge) -> None:
    with pytest.raises(ForgeRejected) as caught:
        github_forge.default_branch("acme/nope")
    assert caught.value.status == 404


def test_git_transport_errors_are_retried(
    github_forge: GitHubForge,
    fake_github: FakeGitHub,
    request_7: PublishRequest,
    tmp_path: Path,
    sleeps: list[float],
    bare: Path,
) -> None:
    fake_github.fail_next("POST", "/git-upload-pack$", 502)
    fake_github.fail_next("POST", "/git-receive-pack$", 503, after=True)

    result = push_and_open_pr(github_forge, request_7, tmp_path / "publish")

    assert git(bare, "rev-parse", f"refs/heads/{BRANCH}") == result.head_sha
    # The push landed although its response was lost; the retry found it up to date.
    assert [r.status for r in fake_github.calls("POST", "/git-receive-pack$")] == [503]
    adverts = fake_github.calls("GET", "/info/refs$")
    assert [r.query["service"] for r in adverts].count("git-receive-pack") == 2
    assert sleeps == [0.5, 0.5]
