"""An environment's key: which files are dependency inputs, and what changes the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.environments.keys import (
    changed_inputs,
    detected,
    environment_key,
    is_key_input,
    key_inputs,
)
from jobs.environments.recipe import plan
from jobs.repo_config import parse_repo_config
from sandboxes.cache import RepoCache, TreeEntry
from sandboxes.config import SandboxConfig
from tests.sandboxes.conftest import make_repo


@pytest.mark.parametrize(
    "path",
    [
        "requirements.txt",
        "requirements-dev.txt",
        "requirements/base.txt",
        "requirements/dev.in",
        "pyproject.toml",
        "setup.py",
        "setup.cfg",
        "poetry.lock",
        "uv.lock",
        "Pipfile.lock",
        "package.json",
        "package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "go.sum",
        "Cargo.lock",
        "Gemfile.lock",
        "web/package.json",
        "services/api/go.sum",
    ],
)
def test_dependency_inputs_are_detected(path: str) -> None:
    assert detected(path)


@pytest.mark.parametrize(
    "path",
    [
        "README.md",
        "src/app.py",
        "node_modules/left-pad/package.json",
        "vendor/github.com/x/go.sum",
        "a/b/c/package.json",  # deeper than MAX_DEPTH
        "docs/requirements.md",
        ".venv/lib/setup.py",
    ],
)
def test_other_files_are_not(path: str) -> None:
    assert not detected(path)


def test_key_files_add_globs() -> None:
    assert is_key_input("tools/versions.env", ["tools/*.env"])
    assert is_key_input("deep/a/b/c/Makefile.deps", ["*Makefile.deps"])
    assert not is_key_input("tools/readme.md", ["tools/*.env"])


def entries(**files: str) -> list[TreeEntry]:
    return [TreeEntry(path.replace("__", "/"), "100644", oid) for path, oid in files.items()]


def key(
    tree: list[TreeEntry], *, setup: tuple[str, ...] = ("make deps",), base: str = "img1"
) -> str:
    return environment_key(
        base_image_id=base,
        setup=list(setup),
        inputs=key_inputs(tree, []),
        shape={"user": "1000:1000"},
    )


def test_the_key_follows_inputs_setup_and_base_image_only() -> None:
    tree = entries(**{"requirements.txt": "a1", "src__app.py": "b1"})
    same = key(tree)
    assert key(entries(**{"requirements.txt": "a1", "src__app.py": "b2"})) == same  # source
    assert key(entries(**{"requirements.txt": "a2", "src__app.py": "b1"})) != same  # input
    assert key(tree, setup=("make deps", "make more")) != same
    assert key(tree, base="j") != same
    assert key(list(reversed(tree))) == same  # order of the listing does not matter


PATCH = """diff --git a/requirements.txt b/requirements.txt
index 1..2 100644
--- a/requirements.txt
+++ b/requirements.txt
@@ -1 +1,2 @@
 iniconfig
+six
diff --git a/src/app.py b/src/app.py
--- a/src/app.py
+++ b/src/app.py
@@ -1 +1 @@
-x
+y
"""


def test_a_patch_that_touches_an_input_has_a_digest_and_one_that_does_not_has_none() -> None:
    touched = changed_inputs(PATCH, [])
    assert touched is not None
    source_only = PATCH.split("diff --git a/src", 1)[0].replace("requirements.txt", "NOTES.md")
    assert changed_inputs(source_only, []) is None
    assert changed_inputs(None, []) is None
    # A different change to the same input is a different digest: setup runs again.
    assert changed_inputs(PATCH.replace("+six", "+attrs"), []) != touched
    # A change elsewhere does not change it.
    assert changed_inputs(PATCH.replace("+y", "+z"), []) == touched


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.text(max_size=400))
def test_any_patch_text_is_read_without_error(text: str) -> None:
    result = changed_inputs(text, ["*.lock"])
    assert result is None or len(result) == 64


def test_two_repositories_never_share_an_environment(tmp_path: Path) -> None:
    """Same files, same setup: still two keys, as an image holds its repository's code."""
    config = parse_repo_config("setup: pip install -r requirements.txt\n")
    cache = RepoCache(tmp_path / "cache")
    keys = []
    for name in ("one", "two"):
        origin = tmp_path / name
        make_repo(origin, {"requirements.txt": "six\n", "app.py": "x = 1\n"})
        cache.mirror(str(origin))
        commit = cache.resolve(str(origin), "HEAD")
        recipe = plan(
            cache,
            repo=f"acme/{name}",
            url=str(origin),
            commit=commit,
            config=config,
            sandbox=SandboxConfig(),
            image_id=lambda image: "sha256:base",
            allowed_bases=[],
        )
        assert recipe.inputs == ("requirements.txt",)
        keys.append(recipe.key)
    assert keys[0] != keys[1]
