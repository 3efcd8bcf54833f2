"""The docs' examples and names against the code they describe.

Every ``.agents.yml`` example in docs/agents-yml.md validates against the real schema,
the error shown there is the one the parser gives, and every setting the operator docs
name exists (a renamed setting would otherwise leave the docs quietly wrong).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jobs.blueprint.sandbox import check_egress
from jobs.repo_config import RepoConfig, parse_repo_config
from process import allowlist, settings
from process.exceptions import RepoConfigError
from sandboxes.config import SandboxConfig
from sandboxes.image_builder import KINDS, SANDBOX_IMAGE

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
OPERATOR_DOCS = (
    "getting-started.md",
    "slack-app.md",
    "github.md",
    "model.md",
    "agents-yml.md",
    "environments.md",
    "scaling.md",
    "operations.md",
)
#: Variables of the compose file rather than of the processes.
COMPOSE_VARIABLES = {
    "AGENTS_BASE",
    "AGENTS_IMAGE_TAG",
    "AGENTS_BOT_PUBLISH",
    "AGENTS_DASHBOARD_PUBLISH",
}


def sections(markdown: str) -> dict[str, list[str]]:
    """The yaml blocks under each "## " heading."""
    found: dict[str, list[str]] = {}
    for part in re.split(r"^## ", markdown, flags=re.MULTILINE)[1:]:
        title = part.splitlines()[0].strip()
        found[title] = re.findall(r"^```yaml\n(.*?)^```", part, flags=re.MULTILINE | re.DOTALL)
    return found


def test_the_python_node_go_and_make_examples_validate_against_the_schema() -> None:
    blocks = sections((DOCS / "agents-yml.md").read_text())
    for language in ("Python", "Node", "Go", "Make"):
        assert len(blocks[language]) == 1, language
        config = parse_repo_config(blocks[language][0])
        assert isinstance(config, RepoConfig)
        assert config.checks, language
        assert config.setup, language
        # Make builds offline; the others install from a registry during setup.
        assert config.network.setup is (language != "Make")
        assert not config.network.agent
        assert not config.network.checks
        # The image is one `agents sandbox build` makes, and the hosts setup asks for
        # are within the default allow-list (else the run would refuse them up front).
        assert (config.image or SANDBOX_IMAGE) in {kind.tag for kind in KINDS.values()}
        check_egress(SandboxConfig(allow=allowlist.DEFAULT_ALLOW), config)


def test_the_documented_error_is_the_parsers() -> None:
    text = (DOCS / "agents-yml.md").read_text()
    shown = re.search(r"^(\.agents\.yml: unknown key .*)$", text, flags=re.MULTILINE)
    assert shown is not None
    with pytest.raises(RepoConfigError) as raised:
        parse_repo_config("limits: {memroy: 4g}\n")
    assert str(raised.value) == shown.group(1)


def test_every_setting_the_docs_name_exists() -> None:
    known = {
        settings.env_name(name, field)
        for cls in settings.ROLES.values()
        for name, field in cls.model_fields.items()
    }
    for page in OPERATOR_DOCS:
        named = set(
            re.findall(
                r"\b(AGENTS_[A-Z_]+[A-Z]|SLACK_[A-Z_]+[A-Z]|ANTHROPIC_[A-Z_]+[A-Z])\b",
                (DOCS / page).read_text(),
            )
        )
        unknown = named - known - COMPOSE_VARIABLES
        assert not unknown, f"{page} names settings that do not exist: {sorted(unknown)}"
