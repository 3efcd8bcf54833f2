"""Host allow-lists for setup egress: what they may hold, and how a repository narrows one.

An entry is a host name. ``pypi.org`` allows that host only; ``.crates.io`` (or
``*.crates.io``) allows crates.io and every name under it. Addresses are not entries:
the proxy allows by name and refuses private, loopback, link-local and metadata
addresses whatever the list says.

The operator's list (``AGENTS_EGRESS_ALLOW``) is the ceiling. A repository's
``network.allow`` can only narrow it: the result is the intersection, and a repository
entry that allows nothing the operator allows is *refused*, by name, so the user learns
why setup cannot reach it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

#: The package registries: PyPI, npm, Debian, the Go module proxy and checksum
#: database, and crates.io.
DEFAULT_ALLOW = (
    "pypi.org",
    "files.pythonhosted.org",
    "registry.npmjs.org",
    "deb.debian.org",
    "security.debian.org",
    "proxy.golang.org",
    "sum.golang.org",
    "crates.io",
    "index.crates.io",
    "static.crates.io",
)
MAX_ENTRIES = 200
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


def normalize(entry: str) -> str:
    """The canonical form of one entry (``*.x`` becomes ``.x``), or ``ValueError``."""
    text = entry.strip().lower().rstrip(".")
    if text.startswith("*."):
        text = text[1:]
    name = text.removeprefix(".")
    if not name or len(name) > 253 or not _HOST.match(name):
        raise ValueError(
            f"{entry!r} is not a host name (expected e.g. pypi.org, or .example.com for "
            "a domain and every name under it)"
        )
    if name.replace(".", "").isdigit():
        raise ValueError(f"{entry!r} is an address; allow host names, not addresses")
    return text


def parse_hosts(entries: Iterable[str]) -> tuple[str, ...]:
    """Normalized, de-duplicated entries in their given order; ``ValueError`` names the
    first bad one."""
    found = tuple(dict.fromkeys(normalize(entry) for entry in entries))
    if len(found) > MAX_ENTRIES:
        raise ValueError(f"at most {MAX_ENTRIES} hosts, got {len(found)}")
    return found


def covers(pattern: str, other: str) -> bool:
    """Whether everything ``other`` allows is allowed by ``pattern`` (both normalized)."""
    if not pattern.startswith("."):
        return other == pattern
    domain = pattern[1:]
    name = other.removeprefix(".")
    return name == domain or name.endswith(pattern)


def allows(entries: Iterable[str], host: str) -> bool:
    """Whether ``host`` may be reached under ``entries`` (the proxy's helper does the same)."""
    name = host.strip().lower().rstrip(".")
    return any(covers(entry, name) for entry in entries)


@dataclass(frozen=True)
class Narrowed:
    """A repository's list applied to the operator's: what is allowed and what is not."""

    allowed: tuple[str, ...]
    refused: tuple[str, ...]


def narrow(operator: Iterable[str], repository: Iterable[str] | None) -> Narrowed:
    """The intersection of the two lists. ``None`` (no ``network.allow``) keeps the
    operator's list whole; an entry of the repository's that allows nothing the
    operator allows is refused."""
    ceiling = tuple(operator)
    if repository is None:
        return Narrowed(ceiling, ())
    wanted = tuple(repository)
    allowed: dict[str, None] = {}
    refused: list[str] = []
    for entry in wanted:
        within = [o for o in ceiling if covers(o, entry)]
        inside = [o for o in ceiling if covers(entry, o)]
        if within:
            allowed[entry] = None
        elif inside:
            allowed.update(dict.fromkeys(inside))
        else:
            refused.append(entry)
    return Narrowed(tuple(allowed), tuple(refused))
