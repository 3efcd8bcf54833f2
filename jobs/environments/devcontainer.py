"""``.devcontainer/devcontainer.json``: the environment of a repository with no setup in
``.agents.yml``.

The file is the repository's, so it is read with limits (:data:`MAX_BYTES`,
:data:`MAX_DEPTH` levels) and as JSON with comments (``//``, ``/* */`` and trailing
commas, as the spec allows), and only this subset is taken:

==========================  ===============================================================
``image``                   the base image (subject to the operator's allowed images)
``build.dockerfile``        a Dockerfile, relative to the devcontainer.json (``dockerFile``
                            at the top level, the older spelling, too)
``build.context``           its build context, relative to the devcontainer.json
``build.args``              build arguments (strings)
``onCreateCommand``         setup, first
``updateContentCommand``    setup, second; also what runs when the source moved but the
                            key did not (``environment.update``)
``postCreateCommand``       setup, last
``containerEnv``            variables for setup and every command
==========================  ===============================================================

A command is a string (run by ``sh -c``), an array (one command, its words quoted) or
an object of named commands (run one after another, in the file's order, rather than
in parallel). Everything else (``features``, ``runArgs``, ``mounts``, ``remoteUser``,
``privileged``, ...) is ignored and said so in the thread: the sandbox always runs
hardened, as uid 1000, without bind mounts.
"""

from __future__ import annotations

import json
import posixpath
import shlex
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from jobs.repo_config import RepoConfig
from process.exceptions import RepoConfigError
from sandboxes.cache import RepoCache

#: Where the file is looked for, in order.
PATHS = (".devcontainer/devcontainer.json", ".devcontainer.json")
MAX_BYTES = 64 * 1024
MAX_DEPTH = 20
MAX_COMMANDS = 20
MAX_COMMAND_CHARS = 8192
TAKEN = frozenset(
    {
        "image",
        "build",
        "dockerFile",
        "context",
        "onCreateCommand",
        "updateContentCommand",
        "postCreateCommand",
        "containerEnv",
        "name",
        "$schema",
    }
)


@dataclass
class Devcontainer:
    """What the sandbox takes from a devcontainer.json; paths are the repository's."""

    path: str
    image: str | None = None
    dockerfile: str | None = None
    context: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    on_create: list[str] = field(default_factory=list)
    update_content: list[str] = field(default_factory=list)
    post_create: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def strip_jsonc(text: str) -> str:
    """``text`` as plain JSON: comments and trailing commas removed, strings untouched.

    A comment becomes a space (or its newlines), so line numbers in JSON's errors stay
    right. An unterminated comment or string is left for ``json`` to report.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            out.append(" ")
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            end = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, end) or " ")
            i = end
        elif c == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "]}":
                out.append(" ")
            else:
                out.append(c)
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` outside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


def parse_devcontainer(text: str, path: str = PATHS[0]) -> Devcontainer:
    """The subset of a devcontainer.json this project takes; :class:`RepoConfigError`
    with a one-line reason when the file is too big, not JSON, or a taken property has
    the wrong shape."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise RepoConfigError(f"{path} is over {MAX_BYTES // 1024} KiB, so it was not read")
    plain = strip_jsonc(text)
    if _depth(plain) > MAX_DEPTH:
        raise RepoConfigError(f"{path} nests deeper than {MAX_DEPTH} levels; no setting needs that")
    try:
        data = json.loads(plain)
    except json.JSONDecodeError as exc:
        raise RepoConfigError(
            f"{path} is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise RepoConfigError(f"{path} nests too deep") from None
    if not isinstance(data, dict):
        raise RepoConfigError(f"{path} must be a JSON object, not {type(data).__name__}")
    return _read(data, path)


def _read(data: dict[str, Any], path: str) -> Devcontainer:
    folder = posixpath.dirname(path)
    found = Devcontainer(path=path, ignored=sorted(k for k in data if k not in TAKEN)[:64])
    image = data.get("image")
    if image is not None:
        found.image = _string(image, path, "image", 256)
    build = data.get("build")
    if build is not None and not isinstance(build, dict):
        raise RepoConfigError(f"{path}: `build` must be an object")
    build = build or {}
    dockerfile = build.get("dockerfile", data.get("dockerFile"))
    if dockerfile is not None:
        found.dockerfile = _inside(folder, _string(dockerfile, path, "build.dockerfile", 256), path)
        context = build.get("context", data.get("context", "."))
        found.context = _inside(folder, _string(context, path, "build.context", 256), path)
    args = build.get("args") or {}
    found.build_args = _strings(args, path, "build.args")
    found.on_create = _commands(data.get("onCreateCommand"), path, "onCreateCommand")
    found.update_content = _commands(data.get("updateContentCommand"), path, "updateContentCommand")
    found.post_create = _commands(data.get("postCreateCommand"), path, "postCreateCommand")
    found.env = _strings(data.get("containerEnv") or {}, path, "containerEnv")
    return found


def _string(value: Any, path: str, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\0" in value:
        raise RepoConfigError(f"{path}: `{what}` must be a non-empty string of at most {limit}")
    return value.strip()


def _strings(value: Any, path: str, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > 64:
        raise RepoConfigError(f"{path}: `{what}` must be an object of at most 64 strings")
    out = {}
    for key, item in value.items():
        if not isinstance(item, str | int | float | bool) or len(str(item)) > 4096:
            raise RepoConfigError(f"{path}: `{what}.{key}` must be a string")
        if not key.isidentifier() or not key.isascii():
            raise RepoConfigError(f"{path}: `{what}` has a name that is not a variable: {key!r}")
        out[key] = item if isinstance(item, str) else json.dumps(item)
    return out


def _commands(value: Any, path: str, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        commands = [value]
    elif isinstance(value, list):
        if not value or not all(isinstance(w, str) and "\0" not in w for w in value):
            raise RepoConfigError(f"{path}: `{what}` as an array must hold strings")
        commands = [shlex.join(value)]
    elif isinstance(value, dict):
        commands = []
        for name, item in value.items():
            commands.extend(_commands(item, path, f"{what}.{name}"))
    else:
        raise RepoConfigError(f"{path}: `{what}` must be a string, an array or an object")
    if len(commands) > MAX_COMMANDS or any(len(c) > MAX_COMMAND_CHARS for c in commands):
        raise RepoConfigError(
            f"{path}: `{what}` has more than {MAX_COMMANDS} commands or one over "
            f"{MAX_COMMAND_CHARS} characters"
        )
    return [c for c in commands if c.strip()]


def _inside(folder: str, relative: str, path: str) -> str:
    joined = posixpath.normpath(posixpath.join(folder, relative))
    if relative.startswith("/") or joined == ".." or joined.startswith("../"):
        raise RepoConfigError(f"{path}: `{relative}` leads outside the repository")
    return joined


def with_devcontainer(config: RepoConfig, dev: Devcontainer) -> RepoConfig:
    """``config`` (which has no setup of its own) with the devcontainer's environment."""
    setup = [*dev.on_create, *dev.update_content, *dev.post_create]
    environment = config.environment.model_copy(
        update={
            "origin": "devcontainer",
            "ignored": dev.ignored,
            "update": list(config.environment.update or dev.update_content),
            "dockerfile": config.environment.dockerfile or dev.dockerfile,
            "context": dev.context if dev.dockerfile else config.environment.context,
            "build_args": {**dev.build_args, **config.environment.build_args},
            "env": {**dev.env, **config.environment.env},
        }
    )
    changes: dict[str, object] = {"setup": setup, "environment": environment}
    if dev.image and not config.image:
        changes["image"] = dev.image
    return config.model_copy(update=changes)


def validated(config: RepoConfig, path: str) -> RepoConfig:
    """``config`` validated again as a whole (a model copy skips validation)."""
    try:
        return RepoConfig.model_validate(config.model_dump())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RepoConfigError(f"{path}: {where}: {first['msg']}") from None


def read_devcontainer(cache: RepoCache, url: str, commit: str) -> Devcontainer | None:
    """The commit's devcontainer.json (the first of :data:`PATHS`), parsed; None if
    there is none. :class:`RepoConfigError` if it is a link, too big or malformed."""
    entries = {entry.path: entry for entry in cache.tree(url, commit)}
    for path in PATHS:
        entry = entries.get(path)
        if entry is None:
            continue
        if entry.mode == "120000":
            raise RepoConfigError(f"{path} is a symbolic link, so it was not read")
        data = cache.read_blob(url, entry.oid, MAX_BYTES)
        if data is None:
            raise RepoConfigError(f"{path} is over {MAX_BYTES // 1024} KiB, so it was not read")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise RepoConfigError(f"{path} is not UTF-8 text, so it was not read") from None
        return parse_devcontainer(text, path)
    return None
