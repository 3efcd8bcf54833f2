"""An environment's key: what it depends on, hashed.

The key covers the base image (its id, so a rebuilt sandbox image is a new key), the
setup commands and what else shapes the build (a Dockerfile, build arguments, the
environment variables, the sandbox user), and the repository's dependency inputs: the
lock files and manifests package managers read, found in the commit's tree, plus the
repository's own ``environment.key_files``. Inputs are identified by their git blob
ids, which are hashes of their contents, so the key is computed from the mirror
without reading a single file.

Two commits with the same key share one environment; a commit that changes an input
(a branch that adds a dependency) gets its own.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import posixpath
import re
from collections.abc import Iterable, Sequence

from sandboxes.cache import TreeEntry

#: Bumped when what goes into a key changes, so older environments are not reused.
RECIPE_VERSION = "1"
#: File names that are dependency inputs wherever they are (within :data:`MAX_DEPTH`).
DETECTED_NAMES = frozenset(
    {
        "pyproject.toml",
        "setup.py",
        "setup.cfg",
        "poetry.lock",
        "uv.lock",
        "Pipfile.lock",
        "package.json",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "go.sum",
        "Cargo.lock",
        "Gemfile.lock",
    }
)
_REQUIREMENTS = re.compile(r"^requirements[^/]*\.(txt|in)$")
#: Directories whose manifests are not the repository's own.
SKIPPED_DIRS = frozenset({"node_modules", "vendor", "third_party", ".git", ".venv", "venv"})
#: Directories deep a detected input may be (``app/web/package.json`` is 2).
MAX_DEPTH = 2
#: Inputs counted at most; a tree with more is cut (deterministically) at this many.
MAX_INPUTS = 500


def detected(path: str) -> bool:
    """Whether ``path`` is a dependency input found without configuration."""
    parts = path.split("/")
    if len(parts) - 1 > MAX_DEPTH or any(p in SKIPPED_DIRS for p in parts[:-1]):
        return False
    name = parts[-1]
    if name in DETECTED_NAMES or _REQUIREMENTS.match(name):
        return True
    # requirements/dev.txt, requirements/base.in
    return len(parts) >= 2 and parts[-2] == "requirements" and name.endswith((".txt", ".in"))


def is_key_input(path: str, key_files: Sequence[str]) -> bool:
    """Whether a change to ``path`` changes the environment."""
    path = posixpath.normpath(path).lstrip("/")
    return detected(path) or any(fnmatch.fnmatchcase(path, pattern) for pattern in key_files)


def key_inputs(entries: Iterable[TreeEntry], key_files: Sequence[str]) -> list[TreeEntry]:
    """The tree's dependency inputs, sorted by path (at most :data:`MAX_INPUTS`)."""
    found = sorted((e for e in entries if is_key_input(e.path, key_files)), key=lambda e: e.path)
    return found[:MAX_INPUTS]


def environment_key(
    *, base_image_id: str, setup: Sequence[str], inputs: Sequence[TreeEntry], shape: dict[str, str]
) -> str:
    """The hex sha256 of everything an environment depends on.

    ``shape``: the rest of the build's recipe (Dockerfile blob, build arguments,
    variables, user), as strings.
    """
    recipe = {
        "version": RECIPE_VERSION,
        "base": base_image_id,
        "setup": list(setup),
        "inputs": [[e.path, e.mode, e.oid] for e in inputs],
        "shape": dict(sorted(shape.items())),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


_DIFF_HEADER = re.compile(r'^diff --git "?a/(.+?)"? "?b/(.+?)"?$', re.MULTILINE)


def changed_inputs(patch: str | None, key_files: Sequence[str]) -> str | None:
    """A digest of what a patch changes in dependency inputs, or None if it changes none.

    For "the agent added a dependency": setup runs again in the run's sandbox when this
    differs from the last time it ran there.
    """
    if not patch:
        return None
    digest = hashlib.sha256()
    touched = False
    sections = re.split(r"(?m)^(?=diff --git )", patch)
    for section in sections:
        match = _DIFF_HEADER.match(section)
        if match is None:
            continue
        if is_key_input(match.group(1), key_files) or is_key_input(match.group(2), key_files):
            touched = True
            digest.update(section.encode("utf-8", "surrogateescape"))
    return digest.hexdigest() if touched else None
