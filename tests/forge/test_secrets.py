"""The forge token reaches git and GitHub, and nothing else: no file, log, or message."""

from __future__ import annotations

import base64
import logging
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fakes.github.server import FakeGitHub
from jobs.forge import PublishRequest, push_and_open_pr
from jobs.forge import git as gitops
from jobs.forge.auth import GitCredentials, git_env, mask_tokens
from jobs.forge.github import GitHubForge
from process.exceptions import ForgeError, GitFailed
from tests.forge.conftest import REPO, TOKEN, MakePatch, first_change, second_change

BASIC = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
SECRETS = (TOKEN.encode(), BASIC.encode())


def files_containing_secrets(root: Path) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(secret in data for secret in SECRETS):
                hits.append(str(path.relative_to(root)))
    return hits


def test_publish_and_rework_over_http_leave_no_token_behind(
    github_forge: GitHubForge,
    fake_github: FakeGitHub,
    make_patch: MakePatch,
    base_commit: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    workdir = tmp_path / "publish"
    request = PublishRequest(
        run_id=9,
        repo=REPO,
        request="retry setting",
        summary="Add a retry setting",
        patch=make_patch(base_commit, first_change),
        base_commit=base_commit,
    )
    first = push_and_open_pr(github_forge, request, workdir)
    rework = replace(request, iteration=2, patch=make_patch(first.head_sha, second_change))
    push_and_open_pr(github_forge, rework, workdir)

    # The token was really used: git's requests carried it, and the push went through.
    git_calls = fake_github.calls(path="^/git/")
    assert any(r.path.endswith("/git-receive-pack") for r in git_calls)
    assert git_calls
    assert all(r.authorized for r in git_calls)

    # ... and it is nowhere on disk: not in the workspace (.git/config, FETCH_HEAD,
    # logs, objects), not in the bare repository, not anywhere under the test's root.
    assert (workdir / ".git" / "config").is_file()
    assert files_containing_secrets(workdir) == []
    assert files_containing_secrets(tmp_path) == []
    config = subprocess.run(
        ["git", "config", "--local", "--list"], cwd=workdir, capture_output=True, text=True
    ).stdout.lower()
    assert "extraheader" not in config
    assert "credential" not in config

    # Nor in any log record, including PyGithub's and urllib3's debug logs.
    assert caplog.records
    for record in caplog.records:
        text = record.getMessage()
        assert TOKEN not in text
        assert BASIC not in text


def test_the_token_is_in_git_s_environment_only(
    github_forge: GitHubForge, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[dict[str, Any]] = []
    real_run = subprocess.run

    def spy(args: list[str], **kwargs: Any) -> Any:
        if args[:2] == ["git", "ls-remote"]:  # not the fake server's git http-backend
            seen.append({"args": args, "env": kwargs.get("env") or {}})
        return real_run(args, **kwargs)

    monkeypatch.setenv("GIT_TRACE_CURL", "1")
    monkeypatch.setenv("GIT_TRACE", "1")
    monkeypatch.setattr(gitops.subprocess, "run", spy)
    head = github_forge.remote_head(REPO, "main")

    assert head is not None
    (call,) = seen
    assert not any(TOKEN in arg or BASIC in arg for arg in call["args"])
    env = call["env"]
    assert "GIT_TRACE" not in env
    assert "GIT_TRACE_CURL" not in env
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    carrying = [key for key, value in env.items() if BASIC in value or TOKEN in value]
    assert carrying == ["GIT_CONFIG_VALUE_1"]
    host = github_forge.clone_url(REPO).split("/git/")[0]
    assert env["GIT_CONFIG_KEY_1"] == f"http.{host}/.extraHeader"
    assert env["GIT_CONFIG_KEY_0"] == "core.hooksPath"


def test_git_errors_are_redacted(github_forge: GitHubForge, tmp_path: Path) -> None:
    gitops.init_workdir(tmp_path / "w")
    with pytest.raises(GitFailed) as caught:
        github_forge.fetch(REPO, tmp_path / "w", ["f" * 40])
    assert TOKEN not in str(caught.value)
    assert BASIC not in str(caught.value)


def test_git_without_the_token_is_refused(fake_github: FakeGitHub, tmp_path: Path) -> None:
    url = f"{fake_github.base_url}/git/{REPO}.git"
    with pytest.raises(GitFailed, match=r"401|Authentication|could not read"):
        gitops.ls_remote(url, "main")
    wrong = GitCredentials(url, "not-the-token")
    with pytest.raises(GitFailed):
        gitops.ls_remote(url, "main", wrong)
    assert gitops.ls_remote(url, "main", GitCredentials(url, TOKEN)) is not None


def test_redaction() -> None:
    credentials = GitCredentials("https://github.com/acme/api.git", TOKEN)
    assert TOKEN not in repr(credentials)
    assert BASIC not in repr(credentials)
    text = f"fatal: https://user:{TOKEN}@github.com/x failed; header Basic {BASIC}"
    cleaned = mask_tokens(text, credentials.secrets)
    assert TOKEN not in cleaned
    assert BASIC not in cleaned
    assert "https://***@github.com/x" in cleaned
    assert credentials.config() == [
        ("http.https://github.com/.extraHeader", f"Authorization: Basic {BASIC}"),
        ("credential.helper", ""),
    ]
    with pytest.raises(ValueError, match="http"):
        GitCredentials("file:///srv/repo.git", TOKEN)


def test_git_env_has_no_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_TRACE_PACKET", "1")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "5")
    monkeypatch.setenv("GIT_CONFIG_KEY_4", "core.sshCommand")
    env = git_env()
    assert "GIT_TRACE_PACKET" not in env
    assert env["GIT_CONFIG_COUNT"] == "1"
    assert "GIT_CONFIG_KEY_4" not in env


def test_forge_errors_do_not_echo_the_token(fake_github: FakeGitHub) -> None:
    """Even a server that echoes the token back has it redacted from the error."""
    fake_github.fail_next("GET", f"^/repos/{REPO}$", 418, message=f"bad token {TOKEN}")
    with (
        GitHubForge(TOKEN, base_url=fake_github.base_url, throttle=False) as forge,
        pytest.raises(ForgeError) as caught,
    ):
        forge.default_branch(REPO)
    assert TOKEN not in str(caught.value)
    assert "bad token ***" in str(caught.value)
