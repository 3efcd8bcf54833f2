"""Which specialist reviewers a diff calls for, by rules over the paths it touches.

- **security**: dependency manifests and lock files, CI workflows, and source files
  named for authentication, cryptography, secrets, tokens, sessions or permissions;
- **migrations**: schema and data migrations (migration directories, SQL files,
  schema dumps).

A documentation-only diff calls for neither. The operator adds globs to a specialist,
or a specialist of their own, with ``AGENTS_SPECIALIST_RULES``
(``{"security": ["**/iam/**"], "licensing": ["LICENSE*"]}``). Paths are matched in
lower case, with :func:`jobs.safety.matches` (``**`` spans directories).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from jobs.safety import matches, touched_paths
from process.settings import SEVERITIES

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")

#: Files whose change is a change of dependencies, at any depth.
DEPENDENCY_MANIFESTS = tuple(
    f"**/{name}"
    for name in (
        "requirements*.txt",
        "requirements/*.txt",
        "constraints*.txt",
        "pyproject.toml",
        "setup.py",
        "setup.cfg",
        "pipfile",
        "pipfile.lock",
        "poetry.lock",
        "uv.lock",
        "package.json",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "go.mod",
        "go.sum",
        "cargo.toml",
        "cargo.lock",
        "gemfile",
        "gemfile.lock",
        "pom.xml",
        "build.gradle",
        "build.gradle.kts",
        "composer.json",
        "composer.lock",
        "dockerfile",
    )
)
WORKFLOWS = (
    ".github/workflows/**",
    ".github/actions/**",
    ".gitlab-ci.yml",
    ".circleci/**",
    "jenkinsfile",
    "azure-pipelines.yml",
    ".buildkite/**",
)
SECURITY_NAMES = (
    "**/*auth*",
    "**/*crypt*",
    "**/*secret*",
    "**/*token*",
    "**/*password*",
    "**/*passwd*",
    "**/*session*",
    "**/*permission*",
    "**/*credential*",
    "**/*.pem",
    "**/*.key",
)
MIGRATIONS = (
    "**/migrations/**",
    "**/migration/**",
    "**/migrate/**",
    "**/alembic/**",
    "**/flyway/**",
    "**/liquibase/**",
    "**/*migration*",
    "**/*.sql",
    "**/schema.rb",
    "**/structure.sql",
    "**/schema.prisma",
)
#: Files that only document: keyword rules (``*auth*``) never fire on them.
DOCUMENTATION = ("**/*.md", "**/*.rst", "**/*.txt", "**/*.adoc", "docs/**", "doc/**")


@dataclass(frozen=True)
class Specialist:
    """A reviewer with one concern, called when the diff touches ``paths``."""

    name: str
    focus: str
    paths: tuple[str, ...]
    #: Globs that count only outside documentation (file-name keywords).
    source_only: tuple[str, ...] = ()

    def called_by(self, path: str) -> bool:
        lowered = path.lower()
        if matches(lowered, self.paths):
            return True
        return bool(self.source_only) and (
            matches(lowered, self.source_only) and not matches(lowered, DOCUMENTATION)
        )


BUILTIN: dict[str, Specialist] = {
    "security": Specialist(
        "security",
        "security: authentication and authorization, cryptography, secrets and "
        "credentials (in code, config and logs), dependency changes (new or upgraded "
        "packages, where they come from, how they are pinned) and CI workflows "
        "(permissions, untrusted input, secrets exposure)",
        DEPENDENCY_MANIFESTS + WORKFLOWS,
        SECURITY_NAMES,
    ),
    "migrations": Specialist(
        "migrations",
        "schema and data migrations: reversibility, locks and downtime on large tables, "
        "data loss, defaults and backfills, and their order relative to the code that "
        "uses them",
        MIGRATIONS,
    ),
}


def specialists(rules: Mapping[str, Iterable[str]]) -> list[Specialist]:
    """The built-in specialists with the operator's globs added, and the operator's
    own (their name says their concern)."""
    found = dict(BUILTIN)
    for name, globs in rules.items():
        key = name.strip().lower()
        if not _NAME.match(key):
            continue
        extra = tuple(glob.strip().lower() for glob in globs if glob.strip())
        known = found.get(key)
        if known is not None:
            found[key] = Specialist(known.name, known.focus, known.paths + extra, known.source_only)
        else:
            focus = f"{key.replace('_', ' ').replace('-', ' ')}: the concerns this name stands for"
            found[key] = Specialist(key, focus, extra)
    return list(found.values())


def chosen(patch: str, rules: Mapping[str, Iterable[str]]) -> list[Specialist]:
    """The specialists the paths ``patch`` touches call for, in a fixed order."""
    paths = [path for path in touched_paths(patch) if path != "/dev/null"]
    return [s for s in specialists(rules) if any(s.called_by(p) for p in paths)]


def is_blocking(severity: str, threshold: str) -> bool:
    """A finding at ``threshold`` or worse blocks publishing."""
    order = {name: rank for rank, name in enumerate(SEVERITIES)}
    return order.get(severity, 0) >= order.get(threshold, len(SEVERITIES))


def where(finding: Mapping[str, object]) -> str:
    path = str(finding.get("path") or "")
    line = finding.get("line")
    if not path:
        return ""
    return f"{posixpath.normpath(path)}:{line}" if line else posixpath.normpath(path)
