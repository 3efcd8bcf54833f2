"""Everything a blueprint run depends on, passed in once.

:mod:`jobs.entrypoints` builds a :class:`Deps` inside each RQ job (network clients are
created there, never at import time); ``agents run`` and the tests build their own.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from jobs.agent.config import AgentConfig
from jobs.agent.model import Model
from jobs.blueprint.config import BlueprintConfig
from jobs.environments.service import Environments
from jobs.forge.protocol import Forge
from runs.record import Run, Step
from runs.store import RunStore
from sandboxes.cache import RepoCache, WorkspaceArchive
from sandboxes.config import SandboxConfig
from sandboxes.protocol import Sandbox

#: ``(run_id, config, workspace) -> sandbox`` (not started yet).
SandboxFactory = Callable[[str, SandboxConfig, WorkspaceArchive], Sandbox]


class ModelProvider(Protocol):
    """Opens the model one job of a run talks to (closed when the job ends).

    One model answers every call of an iteration in order (builder, fix rounds,
    reviewer), so a recorded transcript replays the whole iteration.
    """

    def open(self, run: Run) -> AbstractContextManager[Model]: ...


def _no_auth(url: str) -> str | None:
    return None


def _no_image_id(image: str) -> str | None:
    return None


@dataclass
class Deps:
    store: RunStore
    forge: Forge
    cache: RepoCache
    sandboxes: SandboxFactory
    models: ModelProvider
    agent: AgentConfig
    config: BlueprintConfig
    #: Worker-side scratch space: one publishing repository per run lives under it.
    workdir: Path
    #: ``clone_url -> "Authorization: ..."`` header for refreshing the mirror, or None.
    git_auth: Callable[[str], str | None] = _no_auth
    #: ``image name -> image id`` for the reproducibility manifest, or None.
    image_id: Callable[[str], str | None] = _no_image_id
    #: Called as each step starts (progress output, tests). Must not raise.
    on_step: Callable[[Run, Step], None] | None = None
    #: Repository environments on the Docker engine (``jobs/environments``); None runs
    #: setup in every sandbox (the local backend, or a test that wants that).
    environments: Environments | None = None
