"""Building one environment: a hardened sandbox with the checkout, setup, then commit.

The build container is a sandbox like any other (uid 1000, no capabilities,
no-new-privileges, the repository's limits, network only for setup and only if the
repository asks), except that its workspace and home directory are on the container's
own layer (``workspace_in_image``), so committing the container captures the checkout
and everything setup installed: a venv or ``node_modules`` in the checkout, caches in
the home directory, a tool under a directory the image gave uid 1000.

With a repository Dockerfile, that is built first (:mod:`sandboxes.repo_image`) and
the sandbox starts from it. A failure of either ends the build with the failing
command and the first and last lines of its output; nothing is committed, so nothing
half-built is ever reused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from jobs.environments.recipe import Recipe
from jobs.repo_config import RepoConfig
from process.exceptions import (
    EnvironmentBuildFailed,
    ImageBuildFailed,
    RepoCacheError,
    RepoConfigError,
    SandboxError,
    StepFailed,
)
from runs.artifacts import EgressReport
from sandboxes import env_images
from sandboxes.cache import RepoCache
from sandboxes.env_images import EnvEngine, EnvImage
from sandboxes.protocol import Sandbox

log = logging.getLogger(__name__)

#: Runs the repository's setup commands in a sandbox (``jobs.blueprint.sandbox.run_setup``):
#: online through the egress proxy if setup may be, offline when it returns.
SetupRunner = Callable[[Sandbox, RepoConfig], list[tuple[str, float]]]
#: Told where a build's setup reached through the egress proxy.
EgressListener = Callable[[EgressReport], None]


def build_environment(
    engine: EnvEngine,
    cache: RepoCache,
    recipe: Recipe,
    source_commit: str,
    setup: SetupRunner,
    owner: str = "",
    *,
    on_egress: EgressListener | None = None,
) -> EnvImage:
    """Build ``recipe``'s environment from ``source_commit``; the committed image,
    labelled as ``owner``'s (the run store whose collector may remove it).
    ``on_egress``: told where setup reached through the egress proxy (also when the
    build failed), if setup had network.

    Raises :class:`EnvironmentBuildFailed` with a message for the run's thread.
    """
    started = time.monotonic()
    what = f"the environment of {recipe.repo} ({recipe.short_key})"
    try:
        base = _base_image(engine, cache, recipe, source_commit)
        workspace = cache.workspace(recipe.url, source_commit)
    except (ImageBuildFailed, RepoCacheError, RepoConfigError, StepFailed) as err:
        raise EnvironmentBuildFailed(f"{what} could not be built: {err}") from None
    config = recipe.sandbox.with_changes(image=base, workspace_in_image=True)
    sandbox = engine.sandbox(f"env-{recipe.short_key}", config, workspace=workspace)
    try:
        sandbox.start()
        ran = setup(sandbox, recipe.config)
        seconds = time.monotonic() - started
        image_id = sandbox.snapshot(
            env_images.REPOSITORY,
            env_images.tag_for(recipe.key),
            env_images.image_labels(
                recipe.key,
                recipe.repo,
                owner,
                source_commit,
                datetime.now(UTC),
                seconds,
                list(recipe.inputs),
            ),
        )
    except StepFailed as err:
        raise EnvironmentBuildFailed(f"{what} could not be built: {err}") from None
    except SandboxError as err:
        raise EnvironmentBuildFailed(f"{what} could not be built: {err.message}") from None
    finally:
        sandbox.close()
        report = sandbox.take_egress_report()
        if report is not None:
            log.info("%s: %s", what, report.summary())
            if on_egress is not None:
                on_egress(report)
    log.info(
        "built %s from %s in %.1fs (%d setup command(s))",
        what,
        source_commit[:12],
        time.monotonic() - started,
        len(ran),
    )
    built = engine.find(recipe.key)
    if built is None or built.id != image_id:
        raise EnvironmentBuildFailed(f"{what} was committed but is not on the engine")
    return built


def _base_image(engine: EnvEngine, cache: RepoCache, recipe: Recipe, commit: str) -> str:
    """The image the build sandbox starts from: the repository's Dockerfile built, or
    the sandbox image."""
    if recipe.dockerfile is None:
        return recipe.sandbox.image
    sandbox = recipe.sandbox
    return engine.build_repo_image(
        context=cache.tree_archive(recipe.url, commit, recipe.context),
        dockerfile=recipe.dockerfile_in_context(),
        tag=f"{env_images.BASE_REPOSITORY}:{env_images.tag_for(recipe.key)}",
        build_args=recipe.config.environment.build_args,
        image_labels={"agents.env.base_of": recipe.key},
        # Never a network: the egress proxy admits a sandbox, not a build's steps, and
        # setup's network goes only through it. What needs the network goes in setup.
        network="none",
        memory_mb=sandbox.memory_mb,
        timeout=max(sandbox.command_timeout, 600.0),
    )
