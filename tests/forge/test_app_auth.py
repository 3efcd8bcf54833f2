"""GitHub App authentication: settings, installation tokens minted per job through real
PyGithub against FakeGitHub (which checks the App's RS256 JWT), refreshed before git
calls when they expire, and kept out of logs and run records."""

from __future__ import annotations

import base64
import io
import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from github import Auth

from fakes.github.server import FakeGitHub
from jobs.blueprint.runner import run_blueprint
from jobs.blueprint.wiring import git_auth_for, open_deps, open_forge
from jobs.forge import PublishRequest, push_and_open_pr
from jobs.forge import credentials as github_credentials
from jobs.forge.credentials import AppInstallation
from jobs.forge.github import GitHubForge
from jobs.forge.local import LocalForge
from jobs.forge.retry import ForgeRetry
from process import logs, settings
from process.exceptions import ForgeRejected
from runs.record import RunStatus
from runs.store import RunStore
from tests.blueprint.conftest import CLEAN_REQUEST, SAMPLE, Scripted, script
from tests.blueprint.e2e import redis_dump, unpacked
from tests.forge.conftest import REPO, TOKEN, MakePatch, first_change, git

APP_ID = 271828
INSTALLATION = 4242


class Clock:
    """Now, plus however far the test has moved time on (shared by forge and fake)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def pem(app_key: rsa.RSAPrivateKey) -> str:
    """As GitHub hands it out: ``-----BEGIN RSA PRIVATE KEY-----``."""
    return app_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app_github(bare: Path, app_key: rsa.RSAPrivateKey, clock: Clock) -> Iterator[FakeGitHub]:
    with FakeGitHub(TOKEN) as fake:
        fake.add_repo(REPO, bare=bare)
        fake.enable_app(APP_ID, app_key.public_key(), installation_id=INSTALLATION, clock=clock)
        yield fake


def app_forge(fake: FakeGitHub, pem: str, clock: Clock) -> GitHubForge:
    credentials = AppInstallation(APP_ID, pem, base_url=fake.base_url, clock=clock)
    policy = ForgeRetry(attempts=2, initial_delay=0.0, sleep=lambda seconds: None)
    return GitHubForge(
        credentials=credentials, base_url=fake.base_url, retry=policy, throttle=False
    )


def publish_request(make_patch: MakePatch, base_commit: str) -> PublishRequest:
    return PublishRequest(
        run_id=11,
        repo=REPO,
        request="add a retry setting",
        summary="Add a retry setting",
        patch=make_patch(base_commit, first_change),
        base_commit=base_commit,
    )


# -- settings --------------------------------------------------------------------------


def worker_problems(**overrides: object) -> list[tuple[str, str]]:
    found = settings.problems(settings.WorkerSettings, model_backend="replay", **overrides)
    return [(p.variable, p.expected) for p in found]


@pytest.mark.usefixtures("clean_env")
def test_github_needs_exactly_one_of_a_token_or_an_app(pem: str, tmp_path: Path) -> None:
    [(variable, expected)] = worker_problems()
    assert variable == "GITHUB_TOKEN"
    assert "AGENTS_GITHUB_APP_ID" in expected
    assert "AGENTS_GITHUB_APP_PRIVATE_KEY" in expected

    [(variable, expected)] = worker_problems(
        github_token="ghp_x", github_app_id=APP_ID, github_app_private_key=pem
    )
    assert variable == "GITHUB_TOKEN"
    assert "not both" in expected

    assert worker_problems(github_app_id=APP_ID) == [
        (
            "AGENTS_GITHUB_APP_PRIVATE_KEY",
            "required with AGENTS_GITHUB_APP_ID (or set AGENTS_GITHUB_APP_PRIVATE_KEY_FILE)",
        )
    ]
    assert worker_problems(github_app_private_key=pem) == [
        ("AGENTS_GITHUB_APP_ID", "required with AGENTS_GITHUB_APP_PRIVATE_KEY")
    ]
    [(variable, expected)] = worker_problems(
        github_app_id=APP_ID, github_app_private_key="not-a-key-0123456789"
    )
    assert variable == "AGENTS_GITHUB_APP_PRIVATE_KEY"
    assert "PEM" in expected
    assert "not-a-key" not in expected
    [(variable, expected)] = worker_problems(
        github_app_id=APP_ID, github_app_private_key_file=tmp_path / "missing.pem"
    )
    assert variable == "AGENTS_GITHUB_APP_PRIVATE_KEY_FILE"
    assert "cannot read" in expected

    # Enough, either way; and the local forge needs neither.
    assert worker_problems(github_token="ghp_x") == []
    assert worker_problems(github_app_id=APP_ID, github_app_private_key=pem) == []
    assert worker_problems(forge="local") == []


@pytest.mark.usefixtures("clean_env")
def test_the_app_key_comes_from_the_environment_or_a_file_and_is_a_secret(
    pem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTS_MODEL_BACKEND", "replay")
    monkeypatch.setenv("AGENTS_GITHUB_APP_ID", str(APP_ID))
    # compose passes an unset GITHUB_TOKEN as "": that is no token.
    monkeypatch.setenv("GITHUB_TOKEN", "")
    # A one-line .env value, newlines escaped.
    monkeypatch.setenv("AGENTS_GITHUB_APP_PRIVATE_KEY", pem.strip().replace("\n", "\\n"))
    from_env = settings.load(settings.WorkerSettings)
    assert from_env.github_token is None
    assert from_env.github_app_private_key is not None
    assert from_env.github_app_private_key.get_secret_value() == pem.strip()
    assert pem.strip() in logs.secret_values(from_env)
    assert pem.strip() not in repr(from_env)

    monkeypatch.delenv("AGENTS_GITHUB_APP_PRIVATE_KEY")
    key_file = tmp_path / "app.pem"
    key_file.write_text(pem)
    monkeypatch.setenv("AGENTS_GITHUB_APP_PRIVATE_KEY_FILE", str(key_file))
    monkeypatch.setenv("AGENTS_GITHUB_APP_INSTALLATION_ID", str(INSTALLATION))
    from_file = settings.load(settings.WorkerSettings)
    assert from_file.github_app_private_key is not None
    assert from_file.github_app_private_key.get_secret_value() == pem.strip()
    assert pem.strip() in logs.secret_values(from_file)
    assert from_file.github_app_installation_id == INSTALLATION
    credentials = github_credentials.from_settings(from_file)
    assert isinstance(credentials, AppInstallation)
    assert credentials.installation_id("anyone/anything") == INSTALLATION


# -- the fake checks what GitHub checks ------------------------------------------------


def test_the_fake_wants_the_jwt_for_minting_and_the_installation_token_elsewhere(
    app_github: FakeGitHub, pem: str, app_key: rsa.RSAPrivateKey
) -> None:
    url = app_github.base_url
    jwt = Auth.AppAuth(APP_ID, pem).create_jwt()
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = Auth.AppAuth(
        APP_ID,
        other_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    ).create_jwt()
    wrong_app = Auth.AppAuth(APP_ID + 1, pem).create_jwt()
    mint = f"{url}/app/installations/{INSTALLATION}/access_tokens"

    def bearer(value: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {value}"}

    assert requests.post(mint, headers=bearer(forged), timeout=10).status_code == 401
    assert requests.post(mint, headers=bearer(wrong_app), timeout=10).status_code == 401
    assert requests.post(mint, headers=bearer(TOKEN), timeout=10).status_code == 401
    answer = requests.post(mint, headers=bearer(jwt), timeout=10)
    assert answer.status_code == 201
    token = answer.json()["token"]
    assert answer.json()["expires_at"]

    repo_url = f"{url}/repos/{REPO}"
    assert requests.get(repo_url, headers=bearer(jwt), timeout=10).status_code == 401
    assert requests.get(repo_url, headers=bearer(TOKEN), timeout=10).status_code == 401
    assert requests.get(repo_url, headers=bearer(token), timeout=10).status_code == 200
    installation = f"{repo_url}/installation"
    assert requests.get(installation, headers=bearer(token), timeout=10).status_code == 401
    assert requests.get(installation, headers=bearer(jwt), timeout=10).json()["id"] == INSTALLATION


# -- minted per job, used for API and git ----------------------------------------------


def test_publish_with_an_app_mints_one_token_and_pushes_and_opens_the_pr_with_it(
    app_github: FakeGitHub,
    pem: str,
    clock: Clock,
    make_patch: MakePatch,
    base_commit: str,
    tmp_path: Path,
    bare: Path,
) -> None:
    with app_forge(app_github, pem, clock) as forge:
        result = push_and_open_pr(
            forge, publish_request(make_patch, base_commit), tmp_path / "publish"
        )
        forge.get_pr(REPO, result.pr.number)

    assert len(app_github.minted_tokens) == 1
    assert len(app_github.calls("POST", r"^/app/installations/\d+/access_tokens$")) == 1
    assert len(app_github.calls("GET", rf"^/repos/{REPO}/installation$")) == 1
    assert git(bare, "rev-parse", result.pr.branch) == result.head_sha
    assert app_github.pulls(REPO)[0]["head"]["sha"] == result.head_sha
    pushes = app_github.calls("POST", "git-receive-pack$")
    assert pushes
    assert {r.credential for r in pushes} == {"installation-1"}
    used = app_github.calls(path="^/(repos|git|graphql)")
    used = [r for r in used if not r.path.endswith("/installation")]
    assert {r.credential for r in used} == {"installation-1"}
    assert all(r.authorized for r in app_github.requests)

    # The next job mints its own.
    with app_forge(app_github, pem, clock) as forge:
        forge.default_branch(REPO)
    assert len(app_github.minted_tokens) == 2


def test_an_expired_token_is_replaced_before_the_next_git_call(
    app_github: FakeGitHub,
    pem: str,
    clock: Clock,
    make_patch: MakePatch,
    base_commit: str,
    tmp_path: Path,
) -> None:
    with app_forge(app_github, pem, clock) as forge:
        result = push_and_open_pr(
            forge, publish_request(make_patch, base_commit), tmp_path / "publish"
        )
        [first] = app_github.minted_tokens
        clock.offset = timedelta(hours=1, minutes=1)
        # GitHub would now refuse the first token ...
        gone = requests.get(
            f"{app_github.base_url}/repos/{REPO}",
            headers={"Authorization": f"token {first}"},
            timeout=10,
        )
        assert gone.status_code == 401
        before = len(app_github.requests)
        # ... so the git call takes a fresh one, and so does the API.
        assert forge.remote_head(REPO, result.pr.branch) == result.head_sha
        assert forge.get_pr(REPO, result.pr.number).head_sha == result.head_sha

    assert len(app_github.minted_tokens) == 2
    later = app_github.requests[before:]
    git_calls = [r for r in later if r.path.startswith("/git/")]
    assert git_calls
    assert {r.credential for r in git_calls} == {"installation-2"}
    assert {r.credential for r in later if r.path.startswith("/repos/")} == {"installation-2"}
    assert all(r.authorized for r in later)


def test_an_app_not_installed_on_the_repository_is_a_clear_error(
    app_github: FakeGitHub, pem: str, clock: Clock
) -> None:
    with app_forge(app_github, pem, clock) as forge, pytest.raises(ForgeRejected) as err:
        forge.default_branch("elsewhere/unknown")
    assert "404" in str(err.value)
    assert app_github.minted_tokens == []


# -- a whole job, wired from the worker's settings -------------------------------------


@pytest.mark.redis
@pytest.mark.usefixtures("clean_env", "root_logging")
def test_a_job_with_an_app_mints_once_and_leaves_no_secret_in_logs_or_records(
    app_key: rsa.RSAPrivateKey,
    pem: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    real_redis_conn: redis.Redis,
) -> None:
    # LocalSandbox takes PATH from the worker: this interpreter's python3 first.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    repo = "acme/retrying"
    forge_root = LocalForge(tmp_path / "forge")
    forge_root.create_repo(repo, source=SAMPLE)
    with FakeGitHub(TOKEN) as fake:
        fake.add_repo(repo, bare=forge_root.repo_path(repo))
        fake.enable_app(APP_ID, app_key.public_key(), installation_id=INSTALLATION)
        worker = settings.load(
            settings.WorkerSettings,
            model_backend="replay",
            forge="github",
            github_app_id=APP_ID,
            github_app_private_key=pem,
            github_api_url=fake.base_url,
            sandbox_backend="local",
            cache_dir=tmp_path / "cache",
            ci_timeout_seconds=0,
            log_level="DEBUG",
        )
        out = io.StringIO()
        logs.setup(worker, stream=out)
        store = RunStore(real_redis_conn)
        run = store.create(requester="U1", repo=repo, request=CLEAN_REQUEST)
        models = Scripted({1: script("clean")})
        with open_deps(worker, store, models=models) as deps:
            final = run_blueprint(deps, run.id, by="test")
            [minted] = fake.minted_tokens
            logging.getLogger("agents.test").warning("the token is %s", minted)
        job_requests = list(fake.requests)
        # approve() and the other entrypoints build their forge with open_forge: own token.
        approving = open_forge(worker)
        try:
            approving.get_pr(repo, 1)
        finally:
            approving.close()

    assert final.status is RunStatus.AWAITING_DECISION, final.error
    assert final.artifacts.pr_number == 1
    # One token for the whole job: the mirror fetch, the push and the PR calls used it.
    assert fake.minted_tokens[0] == minted
    assert len(fake.minted_tokens) == 2
    job_calls = [r for r in job_requests if r.credential.startswith("installation-")]
    assert any(r.path.endswith("git-upload-pack") for r in job_calls)
    assert any(r.path.endswith("git-receive-pack") for r in job_calls)
    assert any(r.method == "POST" and r.path.endswith("/pulls") for r in job_calls)
    assert {r.credential for r in job_calls} == {"installation-1"}
    assert all(r.authorized for r in fake.requests)

    key_lines = [line for line in pem.splitlines() if not line.startswith("-----")]
    secrets = [
        minted,
        base64.b64encode(f"x-access-token:{minted}".encode()).decode(),
        pem.strip(),
        *key_lines,
    ]
    printed = out.getvalue()
    assert "the token is ***" in printed
    assert "minted a GitHub App installation token" in printed
    for secret in secrets:
        assert secret not in printed
    dump = redis_dump(real_redis_conn)
    assert any(str(run.id).encode() in value for _, value in dump)
    for key, value in dump:
        for blob in unpacked(value):
            for secret in secrets:
                assert secret.encode() not in blob, key


@pytest.mark.usefixtures("clean_env")
def test_the_mirror_fetch_header_uses_the_job_s_installation_token(
    app_github: FakeGitHub, pem: str, clock: Clock
) -> None:
    worker = settings.WorkerSettings(
        model_backend="replay",
        github_app_id=APP_ID,
        github_app_private_key=pem,
        github_api_url=app_github.base_url,
    )
    credentials = AppInstallation(APP_ID, pem, base_url=app_github.base_url, clock=clock)
    forge = open_forge(worker, credentials)
    try:
        url = forge.clone_url(REPO)
        header = git_auth_for(worker, credentials)(url)
    finally:
        forge.close()
    assert header is not None
    basic = header.removeprefix("Authorization: Basic ")
    assert base64.b64decode(basic).decode() == f"x-access-token:{app_github.minted_tokens[0]}"
    assert len(app_github.minted_tokens) == 1
