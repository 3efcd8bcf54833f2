"""The fake GitHub answers in the shapes GitHub's OpenAPI description gives, field for field.

The product's real forge (PyGithub, git over HTTP) is driven through everything it does
against the fake: publish a change as a draft PR, find it again, read checks and
statuses, mark it ready, edit it, merge it (and be refused), read permissions, and
authenticate as a GitHub App. Every JSON answer the fake served is then held to the
model githubkit generates from GitHub's description for that operation and status: a
field GitHub marks as required and the fake left out, a wrong type, or a field GitHub
does not have, fails. GraphQL is held to its own rule: the answer's ``data`` has exactly
the fields the query selected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from githubkit_schemas.v2022_11_28 import models as gh

from fakes.github.server import FakeGitHub, RecordedRequest
from jobs.forge import PublishRequest, finish_pr, poll_ci, push_and_open_pr
from jobs.forge.credentials import AppInstallation
from jobs.forge.github import GitHubForge
from jobs.forge.retry import ForgeRetry
from process.exceptions import ForgeRejected, MergeRejected
from tests.fakes.contract import violations
from tests.forge.conftest import REPO, TOKEN, MakePatch, first_change

REPO_PATH = r"/repos/[^/]+/[^/]+"

#: (method, path, status) -> the response model of that operation in GitHub's REST
#: description (operation ids in the comments). Errors are ``basic-error``, 422s
#: ``validation-error``, as the description says for every operation here.
OPERATIONS: list[tuple[str, str, str, Any]] = [
    ("GET", REPO_PATH, "200", gh.FullRepository),  # repos/get
    ("GET", f"{REPO_PATH}/pulls", "200", list[gh.PullRequestSimple]),  # pulls/list
    ("POST", f"{REPO_PATH}/pulls", "201", gh.PullRequest),  # pulls/create
    ("POST", f"{REPO_PATH}/pulls", "422", gh.ValidationError),
    ("GET", rf"{REPO_PATH}/pulls/\d+", "200", gh.PullRequest),  # pulls/get
    ("PATCH", rf"{REPO_PATH}/pulls/\d+", "200", gh.PullRequest),  # pulls/update
    ("PUT", rf"{REPO_PATH}/pulls/\d+/merge", "200", gh.PullRequestMergeResult),  # pulls/merge
    ("PUT", rf"{REPO_PATH}/pulls/\d+/merge", "40[59]", gh.BasicError),
    ("POST", rf"{REPO_PATH}/pulls/\d+/reviews", "200", gh.PullRequestReview),  # pulls/create-review
    ("POST", rf"{REPO_PATH}/issues/\d+/comments", "201", gh.IssueComment),  # issues/create-comment
    (  # pulls/list-comments-for-review
        "GET",
        rf"{REPO_PATH}/pulls/\d+/reviews/\d+/comments",
        "200",
        list[gh.ReviewComment],
    ),
    (  # checks/list-for-ref
        "GET",
        f"{REPO_PATH}/commits/[^/]+/check-runs",
        "200",
        gh.ReposOwnerRepoCommitsRefCheckRunsGetResponse200,
    ),
    (  # repos/get-combined-status-for-ref
        "GET",
        f"{REPO_PATH}/commits/[^/]+/status",
        "200",
        gh.CombinedCommitStatus,
    ),
    (  # repos/get-collaborator-permission-level
        "GET",
        f"{REPO_PATH}/collaborators/[^/]+/permission",
        "200",
        gh.RepositoryCollaboratorPermission,
    ),
    ("GET", f"{REPO_PATH}/installation", "200", gh.Installation),  # apps/get-repo-installation
    (  # apps/create-installation-access-token
        "POST",
        r"/app/installations/\d+/access_tokens",
        "201",
        gh.InstallationToken,
    ),
    ("[A-Z]+", ".*", "401|404|5..", gh.BasicError),
]


def model_for(request: RecordedRequest) -> Any:
    for method, path, status, model in OPERATIONS:
        if (
            re.fullmatch(method, request.method)
            and re.fullmatch(path, request.path)
            and re.fullmatch(status, str(request.status))
        ):
            return model
    raise AssertionError(
        f"{request.method} {request.path} -> {request.status}: no operation of GitHub's "
        "description is named for this answer; add it to OPERATIONS"
    )


def selection(query: str) -> dict[str, Any]:
    """The fields a GraphQL query selects under its one top-level field, as a tree."""
    tokens = re.findall(r"\{|\}|\([^)]*\)|[A-Za-z_][A-Za-z0-9_]*", query.split("{", 1)[1])
    tree: dict[str, Any] = {}
    stack = [tree]
    last = ""
    for token in tokens:
        if token == "{":
            stack[-1][last] = {}
            stack.append(stack[-1][last])
        elif token == "}":
            stack.pop()
        elif not token.startswith("("):
            stack[-1][token] = None
            last = token
    return tree


def shape(data: Any) -> Any:
    """The key tree of a GraphQL answer's ``data``, leaves as ``None``."""
    if isinstance(data, dict):
        return {key: shape(value) for key, value in data.items()}
    return None


def graphql_violations(request: RecordedRequest) -> list[str]:
    answer = request.response
    if not isinstance(answer, dict) or set(answer) - {"data", "errors"}:
        return [f"not a GraphQL answer: {answer!r}"]
    if "errors" in answer:
        return [f"GraphQL errors: {answer['errors']}"]
    asked, got = selection(str(request.body["query"])), shape(answer["data"])
    return [] if asked == got else [f"selected {asked}, answered {got}"]


def contract_violations(requests: list[RecordedRequest]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for i, request in enumerate(requests):
        if request.path.startswith("/git/"):
            continue  # git's own protocol, served by git itself
        if request.path == "/graphql":
            problems = graphql_violations(request)
        else:
            problems = violations(model_for(request), request.response)
        if problems:
            found[f"{i}: {request.method} {request.path} -> {request.status}"] = problems
    return found


@pytest.fixture
def fake(bare: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(TOKEN) as fake:
        fake.add_repo(REPO, bare=bare)
        yield fake


@pytest.fixture
def forge(fake: FakeGitHub) -> Iterator[GitHubForge]:
    policy = ForgeRetry(attempts=2, initial_delay=0.0, sleep=lambda seconds: None)
    with GitHubForge(TOKEN, base_url=fake.base_url, retry=policy, throttle=False) as forge:
        yield forge


def drive_the_product(
    fake: FakeGitHub, forge: GitHubForge, make_patch: MakePatch, base_commit: str, work: Path
) -> None:
    """Everything the product's forge does, success and refusal, against ``fake``."""
    publish = PublishRequest(
        run_id=7,
        repo=REPO,
        request="add a retry setting",
        summary="Add a retry setting",
        patch=make_patch(base_commit, first_change),
        base_commit=base_commit,
    )
    result = push_and_open_pr(forge, publish, work / "publish")
    sha = result.head_sha
    again = forge.create_pr(  # 422 "already exists": found instead
        REPO, branch=result.pr.branch, base="main", title="t", body="b", draft=True
    )
    assert again.number == result.pr.number
    with pytest.raises(ForgeRejected):
        forge.create_pr(REPO, branch="agents/none", base="main", title="t", body="", draft=True)
    fake.set_check_runs(
        REPO,
        sha,
        [
            {"name": "lint", "conclusion": "success", "output": {"title": "ok", "summary": "."}},
            {"name": "tests", "status": "in_progress"},
        ],
    )
    fake.set_statuses(
        REPO, sha, [{"context": "ci/docs", "state": "success", "target_url": "https://ci.test"}]
    )

    def ci_finishes(seconds: float) -> None:
        fake.set_check_runs(REPO, sha, [{"name": "tests", "conclusion": "success"}])

    assert poll_ci(forge, REPO, sha, sleep=ci_finishes).state == "success"
    forge.update_pr_body(REPO, result.pr.number, "a new body")
    forge.post_review(REPO, result.pr.number, "**security** (medium): a finding")
    assert fake.reviews(REPO, result.pr.number) == ["**security** (medium): a finding"]
    forge.comment(REPO, result.pr.number, "Iteration 2 is pushed, for @alice.")
    fake.set_permission(REPO, "alice", "write")
    fake.review(
        REPO, result.pr.number, "alice", "changes_requested", "", comments=[("a.py", 3, "No.")]
    )
    (review,) = fake.state.repos[REPO].pulls[result.pr.number - 1].review_comments
    (line_comment,) = forge.review_line_comments(REPO, result.pr.number, review)
    assert (line_comment.path, line_comment.line, line_comment.body) == ("a.py", 3, "No.")
    fake.set_permission(REPO, "alice", "write")
    assert forge.permission(REPO, "alice") == "write"
    assert forge.permission(REPO, "mallory") == "none"  # 404
    with pytest.raises(MergeRejected):
        forge.merge(REPO, result.pr.number, sha="0" * 40)  # a draft: 405
    finished = finish_pr(
        forge, REPO, result.pr.number, action="merge", merge_method="squash", expected_sha=sha
    )
    assert finished.merged
    with pytest.raises(ForgeRejected):
        forge.get_pr(REPO, 99)  # 404
    fake.fail_next("GET", r"/pulls/1$", status=502)  # retried
    assert forge.get_pr(REPO, 1).merged


def test_every_answer_to_the_product_is_shaped_as_github_describes(
    fake: FakeGitHub, forge: GitHubForge, make_patch: MakePatch, base_commit: str, tmp_path: Path
) -> None:
    drive_the_product(fake, forge, make_patch, base_commit, tmp_path)
    served = {(r.method, r.status) for r in fake.requests if not r.path.startswith("/git/")}
    # Every kind of answer was met: a contract test that sees none proves nothing.
    assert {("GET", 200), ("POST", 201), ("POST", 422), ("PATCH", 200), ("PUT", 200)} <= served
    assert {("PUT", 405), ("GET", 404), ("GET", 502), ("POST", 200)} <= served
    app_only = ("/installation", "/access_tokens")
    unmet = [
        (method, path, status)
        for method, path, status, _ in OPERATIONS[:-1]
        if not path.endswith(app_only)
        and not any(
            re.fullmatch(method, r.method)
            and re.fullmatch(path, r.path)
            and re.fullmatch(status, str(r.status))
            for r in fake.requests
        )
    ]
    assert unmet == []  # every operation the product uses was exercised
    assert contract_violations(fake.requests) == {}


def test_the_github_app_endpoints_are_shaped_as_github_describes(
    fake: FakeGitHub, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    fake.enable_app(271828, key.public_key(), installation_id=4242)
    credentials = AppInstallation(271828, pem, base_url=fake.base_url)
    policy = ForgeRetry(attempts=1, initial_delay=0.0, sleep=lambda seconds: None)
    with GitHubForge(
        credentials=credentials, base_url=fake.base_url, retry=policy, throttle=False
    ) as forge:
        assert forge.default_branch(REPO) == "main"
    paths = {(r.method, r.path, r.status) for r in fake.requests}
    assert ("GET", f"/repos/{REPO}/installation", 200) in paths
    assert ("POST", "/app/installations/4242/access_tokens", 201) in paths
    assert contract_violations(fake.requests) == {}


def test_unauthenticated_answers_are_shaped_as_github_describes(fake: FakeGitHub) -> None:
    policy = ForgeRetry(attempts=1, initial_delay=0.0, sleep=lambda seconds: None)
    with (
        GitHubForge("wrong", base_url=fake.base_url, retry=policy, throttle=False) as forge,
        pytest.raises(ForgeRejected),
    ):
        forge.default_branch(REPO)
    assert [r.status for r in fake.requests] == [401]
    assert contract_violations(fake.requests) == {}


# -- the contract can fail -------------------------------------------------------------


def served_once(fake: FakeGitHub, forge: GitHubForge) -> RecordedRequest:
    """The repository as the fake served it to the product."""
    assert forge.default_branch(REPO) == "main"
    (served,) = fake.calls("GET", f"^/repos/{REPO}$")
    return served


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda body: body.update(star_count=5), "/star_count: not a field"),
        (lambda body: body["owner"].update(plan="free"), "/owner/plan: not a field"),
        (lambda body: body.pop("clone_url"), "/clone_url: Field required"),
        (lambda body: body.update(private="yes"), "/private: Input should be a valid boolean"),
    ],
    ids=["extra-field", "nested-extra-field", "missing-field", "wrong-type"],
)
def test_a_field_github_does_not_serve_fails_the_contract(
    fake: FakeGitHub, forge: GitHubForge, mutate: Any, expected: str
) -> None:
    served = served_once(fake, forge)
    assert contract_violations([served]) == {}
    mutate(served.response)
    (problems,) = contract_violations([served]).values()
    assert any(expected in problem for problem in problems), problems


def test_a_graphql_answer_with_a_field_not_selected_fails_the_contract() -> None:
    query = (
        "mutation Mutation($input: MarkPullRequestReadyForReviewInput!) "
        "{ markPullRequestReadyForReview(input: $input) { clientMutationId pullRequest "
        "{ isDraft } } }"
    )
    good = {
        "markPullRequestReadyForReview": {
            "clientMutationId": None,
            "pullRequest": {"isDraft": False},
        }
    }
    bad = {"markPullRequestReadyForReview": {"pullRequest": {"isDraft": False, "title": "x"}}}

    def answered(data: dict[str, Any]) -> RecordedRequest:
        return RecordedRequest(
            "POST", "/graphql", {}, {"query": query}, {}, True, 200, "", {"data": data}
        )

    assert contract_violations([answered(good)]) == {}
    assert contract_violations([answered(bad)]) != {}


def test_an_answer_no_operation_describes_fails_the_contract() -> None:
    stray = RecordedRequest("GET", f"/repos/{REPO}/branches", {}, None, {}, True, 200, "", [])
    with pytest.raises(AssertionError, match="no operation of GitHub's description"):
        contract_violations([stray])
