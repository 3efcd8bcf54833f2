"""prepare: resolve the repository, base branch and commit, read ``.agents.yml``, and
build the sandbox (workspace from the cache, setup commands run)."""

from __future__ import annotations

import fnmatch
import importlib.metadata

from jobs.agent.config import AgentConfig
from jobs.blueprint.config import BlueprintConfig
from jobs.blueprint.context import RunContext
from jobs.blueprint.sandbox import RepoFiles, SandboxSession, sandbox_config, workspace
from jobs.repo_config import CONFIG_FILE, RepoConfig, resolve
from process.exceptions import RepoConfigError, StepFailed
from runs.events import Prepared
from runs.record import Run


def effective_config(
    repo: RepoConfig, defaults: BlueprintConfig, agent: AgentConfig | None = None
) -> tuple[RepoConfig, list[str]]:
    """The repository's config within the operator's: the worker's defaults where it
    says nothing, and every limit at most the operator's (``agent``: the worker's agent
    configuration). Also what was lowered, for the thread.

    A repository only tightens: a limit over the operator's is lowered to it, the
    operator's protected paths stay protected whatever ``protected_paths`` says, and an
    ``image`` must be the worker's own or on ``AGENTS_ALLOWED_IMAGES``, or the run
    fails saying so.
    """
    agent = agent or AgentConfig()
    given = repo.model_fields_set
    lowered: list[str] = []

    def at_most(what: str, value: float | None, ceiling: float) -> float | None:
        if value is None or value <= ceiling:
            return value
        lowered.append(f"{what} {value:g} lowered to the worker's {ceiling:g}")
        return ceiling

    changes: dict[str, object] = {}
    if "fix_rounds" not in given:
        changes["fix_rounds"] = defaults.fix_rounds
    else:
        changes["fix_rounds"] = int(
            at_most("fix_rounds", repo.fix_rounds, defaults.fix_rounds) or 0
        )
    if "escalation" not in given:
        changes["escalation"] = defaults.escalation
    changes["protected_paths"] = list(
        dict.fromkeys([*defaults.protected_paths, *repo.protected_paths])
    )
    ceiling = agent.max_command_timeout
    limits = repo.limits
    timeout = at_most("limits.command_timeout", limits.command_timeout, ceiling)
    changes["limits"] = limits.model_copy(
        update={
            "max_turns": at_most("limits.max_turns", limits.max_turns, agent.limits.max_turns),
            "max_dollars": at_most(
                "limits.max_dollars", limits.max_dollars, agent.limits.max_dollars
            ),
            "command_timeout": None if timeout is None else int(timeout),
        }
    )
    changes["checks"] = [
        check.model_copy(
            update={
                "timeout": int(at_most(f"checks.{check.name}.timeout", check.timeout, ceiling) or 1)
            }
        )
        for check in repo.checks
    ]
    if repo.image and not image_allowed(repo.image, defaults):
        allowed = ", ".join(f"`{p}`" for p in defaults.allowed_images) or "none besides it"
        raise StepFailed(
            f"{CONFIG_FILE}: `image: {repo.image[:100]}` is not an image this worker may run "
            f"(its own is `{defaults.sandbox.image}`; AGENTS_ALLOWED_IMAGES: {allowed}); "
            "remove `image:`, or ask an admin to allow it"
        )
    return repo.model_copy(update=changes), lowered


def image_allowed(image: str, defaults: BlueprintConfig) -> bool:
    """The worker's own sandbox image, or one matching an ``AGENTS_ALLOWED_IMAGES`` glob."""
    return image == defaults.sandbox.image or any(
        fnmatch.fnmatchcase(image, pattern) for pattern in defaults.allowed_images
    )


def read_config(
    files: RepoFiles, defaults: BlueprintConfig, agent: AgentConfig | None = None
) -> tuple[RepoConfig, list[str]]:
    """``.agents.yml`` validated (a bad one fails the run with its message), checks
    detected when none are configured, within the operator's limits."""
    try:
        config = resolve(files.read_config(CONFIG_FILE), files.exists, files.read)
    except RepoConfigError as err:
        raise StepFailed(str(err)) from None
    return effective_config(config, defaults, agent)


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
    lowered: list[str] = []
    if known.config is not None:
        config = RepoConfig.model_validate(known.config)
    else:
        files = RepoFiles(workspace(deps, url, base_commit))
        config, lowered = read_config(files, deps.config, deps.agent)

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
            f"setup: {len(session.setup)} command(s)"
            + (
                f"; {CONFIG_FILE} within this worker's limits: {'; '.join(lowered)}"
                if lowered
                else ""
            ),
            base_commit=base_commit,
            checks=[check.name for check in config.checks],
        )
    )
