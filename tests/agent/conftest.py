"""Fixtures for the agent loop: a sandbox on a copy of the sample repository, the fake
Messages API, and the real SDK client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.record_agent import snapshot
from fakes.anthropic import FakeMessagesAPI
from jobs.agent.config import AgentConfig, ModelRetry
from jobs.agent.model import AnthropicModel, anthropic_client
from process.settings import ROLE_NAMES, AgentLimits, ModelRoles
from sandboxes.cache import WorkspaceArchive
from sandboxes.local_sandbox import LocalSandbox

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_REPO = ROOT / "examples" / "sample-repo"
API_KEY = "sk-ant-test-key"


@pytest.fixture(scope="session")
def sample_archive(tmp_path_factory: pytest.TempPathFactory) -> WorkspaceArchive:
    """The sample repository as the blueprint will hand it over: a workspace archive
    built by the worker's repository cache (offline, from a local origin)."""
    return snapshot(SAMPLE_REPO, tmp_path_factory.mktemp("sample"))


@pytest.fixture
def sandbox(sample_archive: WorkspaceArchive, tmp_path: Path) -> Iterator[LocalSandbox]:
    """The real local sandbox on a fresh copy of the sample repository."""
    with LocalSandbox("agent-test", workspace=sample_archive, parent=tmp_path) as box:
        yield box


@pytest.fixture
def workspace(sandbox: LocalSandbox) -> Path:
    """The sandbox's workspace directory, for arranging files a test needs."""
    return sandbox.root


@pytest.fixture
def api() -> Iterator[FakeMessagesAPI]:
    with FakeMessagesAPI(api_key=API_KEY) as server:
        yield server


class Sleeps(list[float]):
    """Stands in for time.sleep in retries: remembers what it was asked, waits for nothing."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def model(api: FakeMessagesAPI, sleeps: Sleeps) -> Iterator[AnthropicModel]:
    """The real model class and the real SDK client, talking HTTP to the fake API."""
    client = anthropic_client(api_key=API_KEY, base_url=api.base_url, timeout=30)
    try:
        yield AnthropicModel(client, retry=ModelRetry(max_retries=3), sleep=sleeps)
    finally:
        client.close()


#: Every role on its default model with no fallback: a failure or a refusal ends the pass.
NO_FALLBACK = ModelRoles(**{f"model_{role}_fallback": None for role in ROLE_NAMES})


@pytest.fixture
def config() -> AgentConfig:
    return AgentConfig(limits=AgentLimits(max_turns=20, no_progress_turns=3), roles=NO_FALLBACK)
