"""A run's sandboxes on its repository's environment, and what the thread says of it.

Every sandbox of a run goes through :func:`open_in_environment`: the agent's, the
checks' and fix rounds' (the same one), the reviewer's, a resumed job's, a rework's
and the base-commit re-run of the checks. The environment is the one of the commit's
key (:mod:`jobs.environments.keys`): built from the run's base commit (the default
branch's head when the run started) when that has the same key, otherwise from the
commit itself, e.g. a rework whose branch added a dependency.

The run record's ``artifacts.environment`` says which environment the iteration uses
and whether it was built or reused; the thread shows it (:mod:`runs.projection`).
"""

from __future__ import annotations

import logging

from jobs.blueprint.context import RunContext
from jobs.blueprint.sandbox import record_egress, run_setup
from jobs.environments.dockerfile import allowed_bases
from jobs.environments.recipe import Recipe
from jobs.environments.service import Building, Environments, Ready
from jobs.repo_config import RepoConfig
from process.exceptions import RepoCacheError, RepoConfigError, StepFailed
from runs.events import EnvironmentNoted
from runs.record import EnvironmentUse, Run, utcnow
from sandboxes.config import SandboxConfig
from sandboxes.protocol import Sandbox

log = logging.getLogger(__name__)


def _plan(
    ctx: RunContext, run: Run, commit: str, config: RepoConfig, wanted: SandboxConfig
) -> Recipe:
    envs = _environments(ctx)
    try:
        return envs.plan(
            repo=run.repo,
            url=ctx.deps.forge.clone_url(run.repo),
            commit=commit,
            config=config,
            sandbox=wanted,
            allowed_bases=allowed_bases(ctx.deps.config.sandbox.image, config),
        )
    except (RepoConfigError, RepoCacheError) as err:
        raise StepFailed(str(err)) from None


def _environments(ctx: RunContext) -> Environments:
    envs = ctx.deps.environments
    if envs is None:
        raise StepFailed("environments are not available on this worker")
    return envs


def source_commit(
    ctx: RunContext, run: Run, commit: str, config: RepoConfig, recipe: Recipe
) -> str:
    """Where ``recipe``'s environment is built from: the run's base commit when it has
    the same key, so runs on one default-branch head share it; else ``commit``."""
    base = run.artifacts.base_commit
    if base is None or base == commit:
        return commit
    at_base = _plan(ctx, run, base, config, recipe.sandbox)
    return base if at_base.key == recipe.key else commit


def open_in_environment(
    ctx: RunContext, run: Run, commit: str, config: RepoConfig, wanted: SandboxConfig
) -> Sandbox:
    """A started sandbox on ``commit``'s environment (built first if need be), its
    checkout at ``commit``, ``environment.update`` run if the source moved."""
    envs = _environments(ctx)
    recipe = _plan(ctx, run, commit, config, wanted)
    source = source_commit(ctx, run, commit, config, recipe)

    def building(expected: float | None) -> None:
        _record(ctx, recipe, "building", expected=expected)
        ctx.record(
            EnvironmentNoted(
                by=ctx.by,
                text=f"building the environment of {run.repo} ({recipe.short_key}) from "
                f"{source[:12]}: setup runs once, later sandboxes start from it",
            )
        )

    def waiting(build: Building) -> None:
        _record(ctx, recipe, "waiting", expected=build.expected_seconds, since=build.started_at)
        took = (
            f"the last build took {build.expected_seconds:.0f} s"
            if build.expected_seconds is not None
            else "there is no earlier build to go by"
        )
        ctx.record(
            EnvironmentNoted(
                by=ctx.by,
                text=f"waiting for the environment of {run.repo} ({recipe.short_key}), which "
                f"another run is building ({took})",
            )
        )

    ready = envs.ensure(
        recipe,
        source,
        on_wait=waiting,
        on_build=building,
        on_egress=lambda report: record_egress(ctx, report),
    )
    envs.lease(ready.image, f"{ctx.store.identity}|{run.id}")
    sandbox, pooled = envs.open(str(run.id), recipe, ready.image, commit)
    updated = 0
    try:
        if commit != ready.image.commit and config.environment.update:
            run_setup(sandbox, config, config.environment.update, kind="environment.update")
            updated = 1
    except BaseException:
        sandbox.close()
        raise
    _used(ctx, ready, pooled, updated)
    return sandbox


def _record(
    ctx: RunContext,
    recipe: Recipe,
    outcome: str,
    *,
    expected: float | None = None,
    since: object = None,
) -> None:
    def change(run: Run) -> None:
        run.artifacts.environment = EnvironmentUse.model_validate(
            {
                "key": recipe.key,
                "outcome": outcome,
                "expected_seconds": expected,
                "since": since or utcnow(),
            }
        )

    ctx.save(change)


def _used(ctx: RunContext, ready: Ready, pooled: bool, updated: int) -> None:
    image = ready.image
    first = True

    def change(run: Run) -> None:
        nonlocal first
        known = run.artifacts.environment
        if known is not None and known.key == image.key and known.outcome in ("built", "reused"):
            first = False
            env = known
        else:
            env = EnvironmentUse(
                key=image.key,
                outcome="built" if ready.built else "reused",
                image=image.id,
                commit=image.commit,
                built_at=image.created_at,
                build_seconds=image.build_seconds,
            )
        env.image = image.id
        env.sandboxes += 1
        env.from_pool += int(pooled)
        env.updates += updated
        run.artifacts.environment = env

    ctx.save(change)
    if first:
        how = f"built in {image.build_seconds:.0f} s" if ready.built else "reused"
        ctx.record(
            EnvironmentNoted(
                by=ctx.by,
                text=f"environment {image.short_key} {how} (checkout of {image.commit[:12]}; "
                f"dependency inputs: {image.inputs or 'none found'})",
                key=image.key,
                built=ready.built,
            )
        )
