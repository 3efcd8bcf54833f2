"""The diff safety gate: refuse to push secrets or changes to protected paths.

It reads the patch the sandbox exported, which is untrusted: it was written by a model
that read untrusted repository content. Findings never repeat the secret itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

#: Shapes of credentials, matched on added lines only.
SECRET_PATTERNS: dict[str, re.Pattern[str]] = {
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(
        r"(?i)aws_?secret_?(?:access_?)?key\W{0,5}[A-Za-z0-9/+=]{40}\b"
    ),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}|\bxapp-\d-[A-Za-z0-9-]{10,}"),
    "Anthropic API key": re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    "OpenAI API key": re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9]{32,}"),
    "Stripe secret key": re.compile(r"\b[rs]k_live_[A-Za-z0-9]{20,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
}

DEFAULT_PROTECTED = (".github/workflows/**",)


@dataclass(frozen=True)
class Finding:
    kind: str  # "secret" or "protected_path"
    path: str
    detail: str
    line: int | None = None

    def describe(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{self.detail} in {where}"


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """A path glob where ``**`` spans directories and ``*`` stays inside one."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matches(path: str, patterns: Iterable[str]) -> bool:
    return any(_glob(p).match(path) for p in patterns)


_DIFF_HEADER = re.compile(r'^diff --git "?a/(.+?)"? "?b/(.+?)"?$')
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")


def _unquote(path: str) -> str:
    """Undo git's C-style quoting of unusual file names (octal escapes)."""
    if "\\" not in path:
        return path
    raw = path.encode("latin-1", "backslashreplace").decode("unicode_escape")
    return raw.encode("latin-1").decode("utf-8", "replace")


def touched_paths(patch: str | bytes) -> list[str]:
    """Every path ``patch`` touches (both sides of a rename or copy), in order, once."""
    text = patch.decode("utf-8", "replace") if isinstance(patch, bytes) else patch
    touched: list[str] = []
    for raw in text.splitlines():
        header = _DIFF_HEADER.match(raw)
        if header:
            touched.extend((_unquote(header.group(1)), _unquote(header.group(2))))
            continue
        for prefix in ("rename from ", "rename to ", "copy from ", "copy to "):
            if raw.startswith(prefix):
                touched.append(_unquote(raw[len(prefix) :].strip('"')))
    return list(dict.fromkeys(touched))


def mask(secret: str) -> str:
    return f"{secret[:4]}…, {len(secret)} chars"


def scan(
    patch: str | bytes,
    *,
    protected: Iterable[str] = DEFAULT_PROTECTED,
    allow: Iterable[str] = (),
) -> list[Finding]:
    """Everything in ``patch`` that should stop a push, unless explicitly allowed."""
    text = patch.decode("utf-8", "replace") if isinstance(patch, bytes) else patch
    protected, allow = tuple(protected), tuple(allow)
    findings: list[Finding] = []
    touched: list[str] = []
    path = "?"
    line_no: int | None = None
    for raw in text.splitlines():
        header = _DIFF_HEADER.match(raw)
        if header:
            old, new = _unquote(header.group(1)), _unquote(header.group(2))
            path = new
            touched.extend({old, new})
            line_no = None
            continue
        for prefix in ("rename from ", "rename to ", "copy from ", "copy to "):
            if raw.startswith(prefix):
                touched.append(_unquote(raw[len(prefix) :].strip('"')))
        hunk = _HUNK.match(raw)
        if hunk:
            line_no = int(hunk.group(1))
            continue
        if raw.startswith("+") and not raw.startswith("+++"):
            for name, pattern in SECRET_PATTERNS.items():
                found = pattern.search(raw)
                if found:
                    findings.append(
                        Finding(
                            "secret",
                            path,
                            f"possible {name} ({mask(found.group(0))})",
                            line_no,
                        )
                    )
            if line_no is not None:
                line_no += 1
        elif raw.startswith(" ") and line_no is not None:
            line_no += 1
    for name in dict.fromkeys(touched):
        if matches(name, protected) and not matches(name, allow):
            findings.append(Finding("protected_path", name, "a change to a protected path"))
    return findings
