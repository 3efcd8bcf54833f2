"""What an environment is built from, for one commit: its recipe and key.

Computed from the mirror (a tree listing and, for a Dockerfile, one blob), so a run
knows which environment it needs before any container exists.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from jobs.environments.dockerfile import MAX_BYTES, base_images, refuse_unless_allowed
from jobs.environments.keys import environment_key, key_inputs
from jobs.repo_config import RepoConfig
from process.exceptions import RepoConfigError
from sandboxes.cache import RepoCache, strip_userinfo
from sandboxes.config import SandboxConfig

ImageId = Callable[[str], str | None]


@dataclass(frozen=True)
class Recipe:
    """An environment to build or reuse: the repository, its key, and how to build it."""

    repo: str
    url: str
    key: str
    #: The dependency inputs the key covers (paths).
    inputs: tuple[str, ...]
    config: RepoConfig
    #: The sandbox the build runs in: the worker's hardened defaults with the
    #: repository's limits and network; its image is the base (unless a Dockerfile).
    sandbox: SandboxConfig

    @property
    def short_key(self) -> str:
        return self.key[:12]

    @property
    def dockerfile(self) -> str | None:
        return self.config.environment.dockerfile

    @property
    def context(self) -> str:
        return self.config.environment.context or "."

    def dockerfile_in_context(self) -> str:
        """The Dockerfile's path inside its build context."""
        assert self.dockerfile is not None
        relative = posixpath.relpath(self.dockerfile, self.context)
        if relative.startswith("../"):
            raise RepoConfigError(
                f"environment.dockerfile {self.dockerfile} is outside its build context "
                f"{self.context}"
            )
        return relative


def plan(
    cache: RepoCache,
    *,
    repo: str,
    url: str,
    commit: str,
    config: RepoConfig,
    sandbox: SandboxConfig,
    image_id: ImageId,
    allowed_bases: Iterable[str],
) -> Recipe:
    """The recipe of ``commit``'s environment. :class:`RepoConfigError` when the
    repository's Dockerfile is missing, unreadable or starts from an image it may not."""
    entries = cache.tree(url, commit)
    inputs = key_inputs(entries, config.environment.key_files)
    env = config.environment
    shape = {
        # Never shared between repositories: an image holds its repository's objects.
        "repo": f"{repo} {strip_userinfo(url)}",
        "user": sandbox.user,
        "env": json.dumps(env.env, sort_keys=True),
        "setup_network": str(config.network.setup),
    }
    if env.dockerfile:
        entry = next((e for e in entries if e.path == env.dockerfile), None)
        if entry is None:
            raise RepoConfigError(
                f"environment.dockerfile: {env.dockerfile} is not in the repository at "
                f"{commit[:12]}"
            )
        data = cache.read_blob(url, entry.oid, MAX_BYTES)
        if data is None:
            raise RepoConfigError(f"{env.dockerfile} is over {MAX_BYTES // 1024} KiB")
        bases = base_images(data.decode("utf-8", "replace"), env.build_args, env.dockerfile)
        refuse_unless_allowed(bases, allowed_bases, env.dockerfile)
        shape.update(
            dockerfile=f"{env.dockerfile}:{entry.oid}",
            context=env.context or ".",
            build_args=json.dumps(env.build_args, sort_keys=True),
            bases=",".join(image_id(b) or b for b in bases),
        )
    key = environment_key(
        base_image_id=image_id(sandbox.image) or sandbox.image,
        setup=config.setup,
        inputs=inputs,
        shape=shape,
    )
    return Recipe(
        repo=repo,
        url=url,
        key=key,
        inputs=tuple(e.path for e in inputs),
        config=config,
        sandbox=sandbox,
    )
