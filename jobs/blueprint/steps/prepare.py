"""prepare: resolve the repository, base branch and commit, read ``.agents.yml`` (or,
without setup there, ``.devcontainer/devcontainer.json``), and open the sandbox: on
the repository's environment, built first if this key has none yet."""

from __future__ import annotations

import fnmatch
import importlib.metadata

from jobs.agent.config import AgentConfig
from jobs.blueprint.config import BlueprintConfig
from jobs.blueprint.context import RunContext
from jobs.blueprint.deps import Deps
from jobs.blueprint.sandbox import (
    RepoFiles,
    SandboxSession,
    check_egress,
    sandbox_config,
    workspace,
)
from jobs.environments.devcontainer import read_devcontainer, validated, with_devcontainer
from jobs.repo_config import CONFIG_FILE, RepoConfig, resolve
from process.exceptions import RepoCacheError, RepoConfigError, StepFailed
from runs.artifacts import Manifest, ManifestEnvironment
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


def _resolved(files: RepoFiles) -> RepoConfig:
    """``.agents.yml`` validated (a bad one fails the run with its message), checks
    detected when none are configured."""
    try:
        return resolve(files.read_config(CONFIG_FILE), files.exists, files.read)
    except RepoConfigError as err:
        raise StepFailed(str(err)) from None


def read_config(
    files: RepoFiles, defaults: BlueprintConfig, agent: AgentConfig | None = None
) -> tuple[RepoConfig, list[str]]:
    """The repository's configuration in ``files``, within the operator's limits."""
    config = _resolved(files)
    check_egress(defaults.sandbox, config)
    return effective_config(config, defaults, agent)


def with_devcontainer_setup(deps: Deps, url: str, commit: str, config: RepoConfig) -> RepoConfig:
    """``config`` with the devcontainer's environment when ``.agents.yml`` has no setup
    (nor a Dockerfile) of its own."""
    if config.has_environment:
        return config
    try:
        dev = read_devcontainer(deps.cache, url, commit)
        if dev is None:
            return config
        return validated(with_devcontainer(config, dev), dev.path)
    except (RepoConfigError, RepoCacheError) as err:
        raise StepFailed(str(err)) from None


def config_at(deps: Deps, url: str, commit: str) -> tuple[RepoConfig, list[str]]:
    """The repository's effective configuration at ``commit`` (upkeep uses it too): the
    devcontainer's setup folded in before the operator's limits and images apply; and
    what those limits lowered, for the thread."""
    config = _resolved(RepoFiles(workspace(deps, url, commit)))
    config = with_devcontainer_setup(deps, url, commit, config)
    check_egress(deps.config.sandbox, config)
    return effective_config(config, deps.config, deps.agent)


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
        config, lowered = config_at(deps, url, base_commit)

    def resolved(run: Run) -> None:
        run.artifacts.base_branch = base_branch
        run.artifacts.base_commit = base_commit
        run.artifacts.start_commit = start_commit
        run.artifacts.config = config.model_dump(mode="json")

    ctx.save(resolved)
    session.get("setup")
    image = sandbox_config(deps.config.sandbox, config).image
    manifest = Manifest(
        agents_version=_version(),
        repo=run.repo,
        base_branch=base_branch,
        base_commit=base_commit,
        start_commit=start_commit,
        iteration=run.iteration,
        sandbox=deps.config.sandbox_backend,
        image=image,
        image_id=deps.image_id(image),
        models={
            "builder": deps.agent.roles.model_builder,
            "reviewer": deps.agent.roles.model_reviewer,
        },
        prompt_sha256={},
        setup=list(config.setup),
        environment=_environment_manifest(ctx),
        checks=[check.run for check in config.checks],
        checks_detected=config.detected,
    )

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
            f"{_setup_words(ctx, config, session)}"
            + (
                f"; {CONFIG_FILE} within this worker's limits: {'; '.join(lowered)}"
                if lowered
                else ""
            ),
            base_commit=base_commit,
            checks=[check.name for check in config.checks],
        )
    )


def _environment_manifest(ctx: RunContext) -> ManifestEnvironment | None:
    env = ctx.run().artifacts.environment
    return (
        None
        if env is None
        else ManifestEnvironment(key=env.key, image_id=env.image, commit=env.commit)
    )


def _setup_words(ctx: RunContext, config: RepoConfig, session: SandboxSession) -> str:
    env = ctx.run().artifacts.environment
    if env is not None:
        words = f"setup: in environment {env.key[:12]} ({env.outcome})"
    else:
        words = f"setup: {len(session.setup)} command(s)"
    if config.environment.origin == "devcontainer":
        words += " from .devcontainer/devcontainer.json"
        if config.environment.ignored:
            words += f" (ignored there: {', '.join(config.environment.ignored[:10])})"
    return words
