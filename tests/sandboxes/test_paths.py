from __future__ import annotations

import pytest

from sandboxes.paths import join, workspace_relative


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".", "."),
        ("a/b", "a/b"),
        ("a//b/./c", "a/b/c"),
        ("a/../b", "b"),
        ("dir with space", "dir with space"),
    ],
)
def test_relative_paths_are_normalised(path: str, expected: str) -> None:
    assert workspace_relative(path) == expected


@pytest.mark.parametrize("path", ["", "/etc/passwd", "..", "../x", "a/../../x", "a\x00b"])
def test_paths_leaving_the_workspace_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match=r"workspace|invalid"):
        workspace_relative(path)


def test_join_maps_root_and_children() -> None:
    assert join("/workspace", ".") == "/workspace"
    assert join("/workspace", "src/x.py") == "/workspace/src/x.py"
