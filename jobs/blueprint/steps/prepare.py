"""prepare: resolve the repository, base branch and commit, read ``.agents.yml``, and
build the sandbox (workspace from the cache, setup commands run)."""

from __future__ import annotations

import importlib.metadata

from jobs.blueprint.config import BlueprintConfig
from jobs.blueprint.context import RunContext
from jobs.blueprint.sandbox import (
    RepoFiles,
    SandboxSession,
    check_egress,
    sandbox_config,
    workspace,
)
from jobs.repo_config import CONFIG_FILE, RepoConfig, resolve
from process.exceptions import RepoConfigError, StepFailed
from runs.events import Prepared
from runs.record import Run


def effective_config(repo: RepoConfig, defaults: BlueprintConfig) -> RepoConfig:
    """The repository's config, with the worker's defaults where it says nothing."""
    given = repo.model_fields_set
    changes: dict[str, object] = {}
    if "fix_rounds" not in given:
        changes["fix_rounds"] = defaults.fix_rounds
    if "escalation" not in given:
        changes["escalation"] = defaults.escalation
    if "protected_paths" not in given:
        changes["protected_paths"] = list(defaults.protected_paths)
    return repo.model_copy(update=changes)


def read_config(files: RepoFiles, defaults: BlueprintConfig) -> RepoConfig:
    """``.agents.yml`` validated (a bad one fails the run with its message), checks
    detected when none are configured."""
    try:
        config = resolve(files.read(CONFIG_FILE), files.exists, files.read)
    except RepoConfigError as err:
        raise StepFailed(str(err)) from None
    check_egress(defaults.sandbox, config)
    return effective_config(config, defaults)


def _version() -> str:
    try:
        return importlib.metadata.version("agents")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def check_pr_still_open(ctx: RunContext, run: Run) -> None:
    """A rework pushes onto the run's PR branch: refuse if that PR was merged or closed
    since (on GitHub by hand, or by an approve whose worker died before it could say
    so), instead of adding commits to a branch nobody will look at."""
    number = run.artifacts.pr_number
    if run.iteration < 2 or number is None:
        return
    pr = ctx.deps.forge.get_pr(run.repo, number)
    if pr.merged or pr.state == "closed":
        how = "merged" if pr.merged else "closed"
        raise StepFailed(
            f"pull request #{number} was {how} before this rework started, so its branch "
            f"takes no more commits: {pr.url}. Mention the bot again for a new change"
        )


def prepare(ctx: RunContext, session: SandboxSession) -> None:
    deps = ctx.deps
    run = ctx.run()
    check_pr_still_open(ctx, run)
    known = run.artifacts
    base_branch = known.base_branch or deps.forge.default_branch(run.repo)
    url = deps.forge.clone_url(run.repo)
    deps.cache.mirror(url, auth_header=deps.git_auth(url))
    base_commit = known.base_commit or deps.cache.resolve(url, f"refs/heads/{base_branch}")
    start_commit = known.start_commit or base_commit
    if known.config is not None:
        config = RepoConfig.model_validate(known.config)
    else:
        config = read_config(RepoFiles(workspace(deps, url, base_commit)), deps.config)

    def resolved(run: Run) -> None:
        run.artifacts.base_branch = base_branch
        run.artifacts.base_commit = base_commit
        run.artifacts.start_commit = start_commit
        run.artifacts.config = config.model_dump(mode="json")

    ctx.save(resolved)
    session.get("setup")
    image = sandbox_config(deps.config.sandbox, config).image
    manifest = {
        "agents_version": _version(),
        "repo": run.repo,
        "base_branch": base_branch,
        "base_commit": base_commit,
        "start_commit": start_commit,
        "iteration": run.iteration,
        "sandbox": deps.config.sandbox_backend,
        "image": image,
        "image_id": deps.image_id(image),
        "models": {
            "builder": deps.agent.roles.model_builder,
            "reviewer": deps.agent.roles.model_reviewer,
        },
        "prompt_sha256": {},
        "setup": list(config.setup),
        "checks": [check.run for check in config.checks],
        "checks_detected": config.detected,
    }

    def prepared(run: Run) -> None:
        run.artifacts.manifest = manifest

    ctx.save(prepared)
    checks = ", ".join(check.name for check in config.checks) or "none found"
    origin = "detected" if config.detected else "from .agents.yml"
    if not config.checks:
        origin = "no check commands configured or detected"
    ctx.record(
        Prepared(
            by=ctx.by,
            text=f"{run.repo}@{base_commit[:12]} ({base_branch}); checks: {checks} ({origin}); "
            f"setup: {len(session.setup.commands)} command(s)",
            base_commit=base_commit,
            checks=[check.name for check in config.checks],
        )
    )
