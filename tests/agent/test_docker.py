"""The loop with its tools in the real, hardened Docker sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import docker.errors
import pytest

from fakes.anthropic import FakeMessagesAPI, message, tool_use
from jobs.agent.config import AgentConfig
from jobs.agent.loop import run_agent
from jobs.agent.model import AnthropicModel
from jobs.agent.prompt import Task
from jobs.agent.recorders import MemoryRecorder
from sandboxes.cache import WorkspaceArchive
from sandboxes.config import DEFAULT_IMAGE
from sandboxes.docker_sandbox import DockerSandbox

pytestmark = pytest.mark.docker


@pytest.fixture
def docker_sandbox(sample_archive: WorkspaceArchive) -> Iterator[DockerSandbox]:
    try:
        client = docker.from_env()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine: {exc}")
    try:
        client.ping()
        client.images.get(DEFAULT_IMAGE)
    except docker.errors.DockerException as exc:
        client.close()
        pytest.skip(f"Docker or the image {DEFAULT_IMAGE} is not available: {exc}")
    client.close()
    with DockerSandbox("agent-docker-test", workspace=sample_archive) as box:
        yield box


def test_the_loop_runs_its_tools_in_docker(
    api: FakeMessagesAPI, model: AnthropicModel, docker_sandbox: DockerSandbox
) -> None:
    api.add(
        message(
            tool_use("toolu_1", "list_files", {"pattern": "*.py"}),
            tool_use("toolu_2", "search", {"pattern": "^MAX_ATTEMPTS", "include": "*.py"}),
        ),
        message(
            tool_use(
                "toolu_3",
                "edit_file",
                {
                    "path": "retrying/retry.py",
                    "old_text": "MAX_ATTEMPTS = 3",
                    "new_text": "MAX_ATTEMPTS = 4",
                },
            ),
            tool_use(
                "toolu_4",
                "run",
                {"command": "python3 -c 'import retrying; print(retrying.MAX_ATTEMPTS)'"},
            ),
            tool_use("toolu_5", "run", {"command": "ln -s /etc/passwd passwd.txt"}),
        ),
        message(tool_use("toolu_6", "read_file", {"path": "passwd.txt"})),
        message(tool_use("toolu_7", "finish", {"summary": "raised the limit to 4"})),
    )
    task = Task(repo="acme/retrying", request="raise the retry limit to 4")
    result = run_agent(
        task,
        sandbox=docker_sandbox,
        model=model,
        recorder=MemoryRecorder(),
        config=AgentConfig(),
    )
    assert result.summary == "raised the limit to 4"

    bodies = api.bodies
    first = bodies[1]["messages"][-1]["content"]
    assert first[0]["content"] == "retrying/__init__.py\nretrying/retry.py\ntests/test_retry.py"
    assert first[1]["content"] == "retrying/retry.py:11:MAX_ATTEMPTS = 3"
    second = bodies[2]["messages"][-1]["content"]
    assert second[0]["content"].startswith("edited retrying/retry.py")
    assert second[1]["content"] == "exit code: 0\n[stdout]\n4"
    third = bodies[3]["messages"][-1]["content"]
    assert third[0]["is_error"] is True
    assert "resolves outside the workspace" in third[0]["content"]
    patch = docker_sandbox.export_patch()
    assert b"-MAX_ATTEMPTS = 3\n+MAX_ATTEMPTS = 4" in patch
