"""Names, messages, commits and pushes on the worker side."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from jobs.forge import git as gitops
from jobs.forge.git import Identity, branch_name, commit_message, slugify, subject_line
from jobs.forge.retry import ForgeRetry
from process.exceptions import GitFailed, PushRejected, RefLocked
from tests.forge.conftest import MakePatch, first_change, git


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Make the retry limit configurable", "make-the-retry-limit-configurable"),
        ("  Fix: crash in `parse()` when input is ''!  ", "fix-crash-in-parse-when-input-is"),
        ("Übersetze die Fehlermeldungen ins Französische", "ubersetze-die-fehlermeldungen-ins"),
        ("🚀🚀🚀", "change"),
        ("", "change"),
        ("a" * 80, "a" * 40),
    ],
)
def test_slugify(text: str, slug: str) -> None:
    assert slugify(text) == slug
    assert len(slug) <= 40


def test_branch_name_is_stable_and_valid() -> None:
    name = branch_name(42, "in acme/api: make the retry limit configurable")
    assert name == "agents/42-in-acme-api-make-the-retry-limit"
    assert name == branch_name(42, "in acme/api: make the retry limit configurable")
    assert git(Path.cwd(), "check-ref-format", f"refs/heads/{name}") == ""


@pytest.mark.parametrize(
    "bad", ["-f", "a..b", "a/", "a.lock", "a//b", "a/.b", "a b", "refs/heads/x~1", "", "a\nb"]
)
def test_unusable_branch_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="branch name"):
        gitops.check_branch(bad)


def test_commit_message_carries_summary_credit_and_trailers() -> None:
    jane = Identity("Jane Doe", "jane@example.com")
    message = commit_message(
        "Make the retry limit configurable.\n\nReads AGENTS_RETRIES; defaults to 3.",
        run_id=42,
        iteration=2,
        requester="@jane",
        thread_url="https://acme.slack.com/archives/C1/p1",
        co_authors=[jane, Identity("JANE", "Jane@Example.com")],
    )
    assert message == (
        "Make the retry limit configurable\n"
        "\n"
        "Reads AGENTS_RETRIES; defaults to 3.\n"
        "\n"
        "Requested by @jane in https://acme.slack.com/archives/C1/p1.\n"
        "\n"
        "Agents-Run: #42 iteration 2\n"
        "Co-authored-by: Jane Doe <jane@example.com>\n"
    )


def test_commit_message_without_a_mapping_has_no_co_author() -> None:
    message = commit_message("x" * 100, run_id=1, iteration=1)
    subject, _, rest = message.partition("\n\n")
    assert subject == "x" * 69 + "..."
    assert "x" * 100 in rest
    assert "Co-authored-by" not in message
    assert message.endswith("\n\nAgents-Run: #1 iteration 1\n")


def test_subject_line() -> None:
    assert subject_line("\n\n  first line.  \nsecond") == "first line"
    assert subject_line("") == "Change requested in chat"


@pytest.mark.parametrize("bad", [("", "a@b"), ("Eve <x>", "e@x"), ("Eve", "e@x\nFoo: bar")])
def test_identity_refuses_what_would_break_a_trailer(bad: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="git identity"):
        Identity(*bad)


def test_commit_patch_and_a_non_fast_forward_push(
    tmp_path: Path, bare: Path, base_commit: str, make_patch: MakePatch
) -> None:
    work = tmp_path / "w"
    gitops.init_workdir(work)
    gitops.init_workdir(work)  # reusing a workdir is fine
    gitops.fetch(work, bare.as_uri(), [base_commit])
    bot = Identity("bot", "bot@example.com")
    patch = make_patch(base_commit, first_change)

    one = gitops.commit_patch(work, patch, parent=base_commit, message="one\n", author=bot)
    assert one is not None
    assert gitops.commit_patch(work, b"", parent=one, message="nothing\n", author=bot) is None
    other = gitops.commit_patch(work, patch, parent=base_commit, message="other\n", author=bot)
    assert other is not None
    assert other != one

    gitops.push(work, bare.as_uri(), one, "agents/1-x")
    gitops.push(work, bare.as_uri(), one, "agents/1-x")  # pushing again is a no-op
    with pytest.raises(PushRejected):
        gitops.push(work, bare.as_uri(), other, "agents/1-x")
    assert gitops.ls_remote(bare.as_uri(), "agents/1-x") == one
    assert gitops.ls_remote(bare.as_uri(), "agents/none") is None
    with pytest.raises(ValueError, match="full commit id"):
        gitops.push(work, bare.as_uri(), "HEAD", "agents/1-x")


@pytest.mark.parametrize("left", [[], ["objects"], ["objects", "refs"]])
def test_init_workdir_replaces_a_half_made_repository(
    tmp_path: Path, bare: Path, base_commit: str, left: list[str]
) -> None:
    """A worker killed inside ``git init`` leaves ``.git`` without ``HEAD`` (or without
    ``objects/info``); the resumed publish must not trip over it."""
    work = tmp_path / "w"
    for name in left:
        (work / ".git" / name).mkdir(parents=True)
    (work / ".git").mkdir(parents=True, exist_ok=True)

    gitops.init_workdir(work, reference=bare)

    alternates = work / ".git" / "objects" / "info" / "alternates"
    assert alternates.read_text() == f"{(bare / 'objects').resolve()}\n"
    assert gitops.has_commit(work, base_commit)  # borrowed, so nothing was fetched
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".w.init-")) == []


def test_a_branch_name_that_clashes_is_a_lasting_failure_not_a_locked_ref(
    tmp_path: Path, bare: Path, base_commit: str, make_patch: MakePatch
) -> None:
    """git says "cannot lock ref" for this too, but no retry will help."""
    work = tmp_path / "w"
    gitops.init_workdir(work)
    gitops.fetch(work, bare.as_uri(), [base_commit])
    bot = Identity("bot", "bot@example.com")
    sha = gitops.commit_patch(
        work, make_patch(base_commit, first_change), parent=base_commit, message="x\n", author=bot
    )
    assert sha is not None
    gitops.push(work, bare.as_uri(), sha, "agents")
    with pytest.raises(GitFailed, match="cannot lock ref") as caught:
        gitops.push(work, bare.as_uri(), sha, "agents/1-x")
    assert not isinstance(caught.value, RefLocked)


def test_retry_policy_backoff() -> None:
    policy = ForgeRetry(attempts=6, initial_delay=1, max_delay=10)
    assert [policy.delay(n) for n in range(1, 6)] == [1, 2, 4, 8, 10]
    assert policy.delay(1, retry_after=5) == 5
    assert policy.delay(1, retry_after=60) == 10
    with pytest.raises(ValueError, match="attempts"):
        ForgeRetry(attempts=0)


def test_push_runs_no_hooks(
    tmp_path: Path, bare: Path, base_commit: str, make_patch: MakePatch
) -> None:
    work = tmp_path / "w"
    gitops.init_workdir(work)
    hook = work / ".git" / "hooks" / "pre-push"
    hook.write_text(f"#!/bin/sh\ntouch {tmp_path / 'hook-ran'}\nexit 1\n")
    hook.chmod(0o755)
    gitops.fetch(work, bare.as_uri(), [base_commit])
    sha = gitops.commit_patch(
        work,
        make_patch(base_commit, first_change),
        parent=base_commit,
        message="m\n",
        author=Identity("bot", "bot@example.com"),
    )
    assert sha is not None

    gitops.push(work, bare.as_uri(), sha, "agents/2-hooks")

    assert not (tmp_path / "hook-ran").exists()
    assert gitops.read_branch(bare, "agents/2-hooks") == sha


def test_a_patch_exported_the_sandbox_way_reproduces_the_tree(
    tmp_path: Path, bare: Path, base_commit: str
) -> None:
    """The contract with ``sandboxes.patch``: its export applies to the base commit."""
    from sandboxes.patch import export_argv

    work = tmp_path / "sandbox"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    first_change(work)
    git(work, "add", "--all")
    expected_tree = git(work, "write-tree")
    git(work, "reset", "-q")
    patch = subprocess.run(
        export_argv(base_commit), cwd=work, check=True, capture_output=True
    ).stdout

    publish_dir = tmp_path / "publish"
    gitops.init_workdir(publish_dir)
    gitops.fetch(publish_dir, bare.as_uri(), [base_commit])
    sha = gitops.commit_patch(
        publish_dir, patch, parent=base_commit, message="m\n", author=gitops.BOT_IDENTITY
    )

    assert sha is not None
    assert git(publish_dir, "rev-parse", f"{sha}^{{tree}}") == expected_tree
