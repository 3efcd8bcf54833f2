"""Workspace-relative paths, checked the same way by every backend."""

from __future__ import annotations

import posixpath


def workspace_relative(path: str) -> str:
    """``path`` normalised; "." for the root. Absolute paths and ``..`` escapes are refused.

    This is a lexical check. Symlinks are the backend's business: the Docker backend
    resolves them inside the container, where nothing secret lives.
    """
    if not path or "\x00" in path:
        raise ValueError(f"invalid workspace path {path!r}")
    if path.startswith("/"):
        raise ValueError(f"workspace paths are relative to the workspace root, got {path!r}")
    normal = posixpath.normpath(path)
    if normal == ".." or normal.startswith("../"):
        raise ValueError(f"{path!r} leaves the workspace")
    return normal


def join(root: str, path: str) -> str:
    """The absolute in-sandbox path of a workspace-relative ``path``."""
    relative = workspace_relative(path)
    return root if relative == "." else posixpath.join(root, relative)
