"""The diff safety gate: refuse to push secrets or changes to protected paths.

It reads the patch the sandbox exported, which is untrusted: it was written by a model
that read untrusted repository content. Findings never repeat the secret itself.

It sees through symbolic links, which git records as a file (mode ``120000``) holding
the target: a link that points out of the repository, into a protected path, or that
replaces a directory holding protected paths (``.github`` made a link to a new
directory with a workflow in it) is refused like a change to the path itself.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from process.settings import DEFAULT_PROTECTED_PATHS

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

DEFAULT_PROTECTED = DEFAULT_PROTECTED_PATHS


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


def holds(directory: str, patterns: Iterable[str]) -> bool:
    """Whether a path matching one of ``patterns`` could lie under ``directory`` (``""``
    or ``.``: the repository's root, which holds everything)."""
    parts = [p for p in directory.split("/") if p not in ("", ".")]
    if not parts:
        return True
    for pattern in patterns:
        segments = pattern.split("/")
        for i, part in enumerate(parts):
            if i >= len(segments) - 1:
                break
            if segments[i] == "**":
                return True
            if not fnmatch.fnmatchcase(part, segments[i]):
                break
        else:
            return True
    return False


def link_problem(path: str, target: str, protected: Iterable[str]) -> str | None:
    """Why a symbolic link at ``path`` to ``target`` may not be pushed, or None."""
    protected = tuple(protected)
    if target.startswith("/"):
        return f"a symbolic link out of the repository (to the absolute path {target[:80]})"
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if resolved == ".." or resolved.startswith("../"):
        return f"a symbolic link out of the repository (to {target[:80]})"
    if matches(resolved, protected) or holds(resolved, protected):
        return f"a symbolic link into a protected path (to {resolved[:80]})"
    if holds(path, protected):
        return "a symbolic link in place of a directory that holds protected paths"
    return None


_DIFF_HEADER = re.compile(r'^diff --git "?a/(.+?)"? "?b/(.+?)"?$')
_LINK_MODE = re.compile(r"^(?:new file mode|new mode|index [0-9a-f]+\.\.[0-9a-f]+) 120000$")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")


_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
_OCTAL = re.compile(r"[0-3][0-7]{2}")


def _unquote(path: str) -> str:
    """Undo git's C-style quoting of unusual file names (``\\t``, ``\\"``, octal bytes);
    any other backslash stays as it is."""
    if "\\" not in path:
        return path
    out = bytearray()
    i = 0
    while i < len(path):
        if path[i] == "\\" and i + 1 < len(path):
            if _OCTAL.match(path, i + 1):
                out.append(int(path[i + 1 : i + 4], 8))
                i += 4
                continue
            if path[i + 1] in _ESCAPES:
                out.append(_ESCAPES[path[i + 1]])
                i += 2
                continue
        out += path[i].encode("utf-8", "replace")
        i += 1
    return out.decode("utf-8", "replace")


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
    links: dict[str, list[str]] = {}  # a link the patch makes: path -> its target's lines
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
        if _LINK_MODE.match(raw):
            links[path] = []
            continue
        for prefix in ("rename from ", "rename to ", "copy from ", "copy to "):
            if raw.startswith(prefix):
                touched.append(_unquote(raw[len(prefix) :].strip('"')))
        hunk = _HUNK.match(raw)
        if hunk:
            line_no = int(hunk.group(1))
            continue
        if raw.startswith("+") and not raw.startswith("+++"):
            if path in links:
                links[path].append(raw[1:])
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
    for name, lines in links.items():
        if not lines:  # a link removed, or only its mode changed: nothing points anywhere
            continue
        problem = link_problem(name, "\n".join(lines), protected)
        if problem is not None and not ("protected" in problem and matches(name, allow)):
            findings.append(Finding("protected_path", name, problem))
    return findings
