"""Repository names, by GitHub's own rules, checked before anything else uses them.

A name reaches paths (the worker's mirror and the local forge are directories named
after it), URLs and allow-list globs, so ``acme/..`` or ``../etc`` must never get that
far: ``fnmatch`` lets ``acme/*`` match ``acme/..``. The rules:

- the owner (a user or an organization): 1 to 39 letters, digits and hyphens, starting
  with a letter or digit;
- the name: 1 to 100 letters, digits, ``.``, ``-`` and ``_``, and not ``.`` or ``..``.
"""

from __future__ import annotations

import re

_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
#: An allow-list entry's name part may be a glob (``*``, ``?``) over the same characters.
_NAME_GLOB = re.compile(r"[A-Za-z0-9._*?-]{1,100}")


def repo_problem(repo: str) -> str | None:
    """Why ``repo`` is not a repository name (``owner/name``), or None if it is one."""
    owner, slash, name = repo.partition("/")
    if not slash or "/" in name:
        return "it needs exactly one `/`, between owner and name"
    if not _OWNER.fullmatch(owner):
        return "an owner is 1-39 letters, digits or hyphens, not starting with a hyphen"
    if name in (".", ".."):
        return f"`{name}` is not a name"
    if not _NAME.fullmatch(name):
        return "a name is 1-100 letters, digits, `.`, `-` or `_`"
    return None


def is_repo_name(repo: str) -> bool:
    return repo_problem(repo) is None


def is_repo_pattern(pattern: str) -> bool:
    """An allow-list entry: ``owner/name``, or with a glob in the name (``owner/*``)."""
    owner, slash, name = pattern.partition("/")
    return (
        bool(slash)
        and _OWNER.fullmatch(owner) is not None
        and _NAME_GLOB.fullmatch(name) is not None
        and name not in (".", "..")
    )
