"""Building a blueprint's dependencies from the worker's settings.

Everything here creates clients (the forge's HTTP session, the model's SDK client,
Docker connections), so it runs inside a job, never at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from jobs.agent.model import Model
from jobs.blueprint.config import BlueprintConfig
from jobs.blueprint.deps import Deps, ModelProvider, SandboxFactory
from jobs.blueprint.providers import AnthropicProvider, ReplayProvider
from jobs.blueprint.sandbox import run_setup
from jobs.config import agent_config, blueprint_config, egress_config
from jobs.environments.service import Environments
from jobs.forge import credentials as github_credentials
from jobs.forge import make_forge
from jobs.forge.auth import GitCredentials
from jobs.forge.credentials import GitHubCredentials
from jobs.forge.protocol import Forge
from process.exceptions import TranscriptInvalid
from process.settings import WorkerSettings, seconds_of
from runs.record import Run, Step
from runs.store import RunStore
from sandboxes import engine
from sandboxes.cache import RepoCache, WorkspaceArchive
from sandboxes.config import EgressConfig, SandboxConfig
from sandboxes.env_images import EnvEngine
from sandboxes.factory import Backend, create_sandbox, docker_configured
from sandboxes.protocol import Sandbox


class _MissingTranscript:
    """Replay without a transcript configured: fails the run that needs the model."""

    @contextmanager
    def open(self, run: Run) -> Iterator[Model]:
        raise TranscriptInvalid(
            "AGENTS_MODEL_BACKEND=replay needs AGENTS_REPLAY_TRANSCRIPT (a transcript file "
            "or a directory of them)"
        )
        yield  # a generator, for @contextmanager


def model_provider(settings: WorkerSettings) -> ModelProvider:
    if settings.model_backend == "replay":
        if settings.replay_transcript is None:
            return _MissingTranscript()
        return ReplayProvider(settings.replay_transcript)
    key = settings.anthropic_api_key
    if key is None:
        raise TranscriptInvalid("ANTHROPIC_API_KEY: required when AGENTS_MODEL_BACKEND=anthropic")
    return AnthropicProvider(
        key.get_secret_value(),
        base_url=settings.anthropic_base_url,
        retry=agent_config(settings).retry,
    )


def sandbox_factory(backend: Backend, egress: EgressConfig | None = None) -> SandboxFactory:
    def make(run_id: str, config: SandboxConfig, workspace: WorkspaceArchive) -> Sandbox:
        return create_sandbox(run_id, config, workspace=workspace, backend=backend, egress=egress)

    return make


def git_auth_for(
    settings: WorkerSettings, credentials: GitHubCredentials | None = None
) -> Callable[[str], str | None]:
    """The header the mirror fetch sends to GitHub; nothing for the local forge.

    Pass the job's forge credentials so a GitHub App job uses (and refreshes) the same
    installation token as its forge; the token is read at each fetch."""
    if settings.forge != "github":
        return lambda url: None
    creds = credentials or github_credentials.from_settings(settings)
    if creds is None:
        return lambda url: None

    def header(url: str) -> str | None:
        if not url.startswith(("http://", "https://")):
            return None
        token = creds.token(github_credentials.repo_of(url))
        config = dict(GitCredentials(url, token).config())
        return next((v for k, v in config.items() if k.endswith(".extraHeader")), None)

    return header


def open_forge(settings: WorkerSettings, credentials: GitHubCredentials | None = None) -> Forge:
    """The job's forge; a GitHub App's first installation token is minted on first use."""
    if settings.forge == "github" and credentials is None:
        credentials = github_credentials.from_settings(settings)
    return make_forge(
        settings.forge,
        credentials=credentials,
        github_url=settings.github_api_url,
        local_root=settings.local_forge_dir,
    )


def _with_store(config: BlueprintConfig, store: RunStore) -> BlueprintConfig:
    """Sandboxes are labelled with their run's store, for the reaper."""
    sandbox = config.sandbox.with_changes(store=store.identity)
    return config.model_copy(update={"sandbox": sandbox})


def open_environments(
    settings: WorkerSettings, store: RunStore, cache: RepoCache
) -> Environments | None:
    """Environments on the worker's Docker engine; None on the local backend (or with no
    engine answering: then the sandbox itself says what is wrong)."""
    backend = settings.sandbox_backend
    if backend == "local" or (backend == "auto" and not docker_configured()):
        return None
    engine = EnvEngine.try_connect(egress_config(settings))
    if engine is None:
        return None
    return Environments(
        engine,
        store.redis,
        cache,
        setup=run_setup,
        owner=store.nonce,
        prefix=store.prefix,
        pool_size=settings.warm_pool,
        max_age=seconds_of(settings.env_max_age),
    )


@contextmanager
def open_deps(
    settings: WorkerSettings,
    store: RunStore,
    *,
    models: ModelProvider | None = None,
    on_step: Callable[[Run, Step], None] | None = None,
) -> Iterator[Deps]:
    """A job's dependencies; the forge's client is closed when the block ends."""
    credentials = github_credentials.from_settings(settings)
    forge = open_forge(settings, credentials)
    backend = settings.sandbox_backend
    cache = RepoCache(Path(settings.cache_dir) / "repos")
    environments = open_environments(settings, store, cache)
    try:
        yield Deps(
            store=store,
            forge=forge,
            cache=cache,
            sandboxes=sandbox_factory(backend, egress_config(settings)),
            models=models or model_provider(settings),
            agent=agent_config(settings),
            config=_with_store(blueprint_config(settings), store),
            workdir=Path(settings.cache_dir) / "publish",
            git_auth=git_auth_for(settings, credentials),
            image_id=engine.image_id if backend != "local" else (lambda image: None),
            on_step=on_step,
            environments=environments,
        )
    finally:
        forge.close()
        if environments is not None:
            environments.engine.close()
