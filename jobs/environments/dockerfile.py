"""A repository's Dockerfile, read before it is built: which images it starts from.

A repository may build its environment from its own Dockerfile (``environment.dockerfile``
or a devcontainer's ``build.dockerfile``). It is built on the worker's engine without
pulling, so every ``FROM`` must name an image already there, and one the operator lets
repositories use: the worker's own sandbox image, or the image ``.agents.yml`` (or the
devcontainer) names with ``image:``, which is itself subject to the operator's allowed
images. ``FROM`` lines are read here, with global ``ARG`` defaults and build arguments
substituted; one whose image cannot be told without running anything is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from jobs.repo_config import RepoConfig
from process.exceptions import RepoConfigError

MAX_BYTES = 256 * 1024
MAX_STAGES = 50
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def _instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, with continuation lines joined and comments
    (and parser directives) dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        if whole:
            word, _, rest = whole.partition(" ")
            out.append((word.upper(), rest.strip()))
    if pending.strip():
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _substitute(value: str, known: Mapping[str, str], path: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name in known:
            return known[name]
        if match.group(2) is not None:
            return match.group(2)
        raise RepoConfigError(
            f"{path}: `FROM {value}` uses ${name}, which has no default; give the ARG a "
            "default or name the image directly"
        )

    return _VARIABLE.sub(one, value)


def base_images(text: str, build_args: Mapping[str, str], path: str) -> list[str]:
    """The images the Dockerfile's stages start from (not earlier stages, not
    ``scratch``), in order; :class:`RepoConfigError` when it cannot be read."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise RepoConfigError(f"{path} is over {MAX_BYTES // 1024} KiB, so it was not read")
    known: dict[str, str] = {}
    stages: set[str] = set()
    images: list[str] = []
    seen_from = False
    for word, rest in _instructions(text):
        if word == "ARG" and not seen_from:
            name, eq, default = rest.partition("=")
            name = name.strip()
            if name in build_args:
                known[name] = build_args[name]
            elif eq:
                known[name] = default.strip().strip('"').strip("'")
        elif word == "FROM":
            seen_from = True
            words = [w for w in rest.split() if not w.startswith("--")]
            if not words:
                raise RepoConfigError(f"{path}: a FROM line names no image")
            image = _substitute(words[0], known, path)
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.add(words[2].lower())
            if image.lower() in stages or image == "scratch":
                continue
            images.append(image)
            if len(images) > MAX_STAGES:
                raise RepoConfigError(f"{path} has more than {MAX_STAGES} stages")
    if not seen_from:
        raise RepoConfigError(f"{path} has no FROM line")
    return images


def refuse_unless_allowed(images: Iterable[str], allowed: Iterable[str], path: str) -> None:
    """Raise :class:`RepoConfigError` naming the first image not in ``allowed``."""
    permitted = set(allowed)
    for image in images:
        if image not in permitted:
            shown = ", ".join(f"`{a}`" for a in sorted(permitted))
            raise RepoConfigError(
                f"{path}: `FROM {image[:100]}` is not an image this worker builds on (allowed: "
                f"{shown}); start FROM one of them, or name the image with `image:` in "
                ".agents.yml if the operator allows it"
            )


def allowed_bases(worker_image: str, config: RepoConfig) -> set[str]:
    """Images a repository's Dockerfile may start from: the worker's sandbox image and
    the image the repository names (which the operator's allowed images govern)."""
    allowed = {worker_image}
    if config.image:
        allowed.add(config.image)
    return allowed
