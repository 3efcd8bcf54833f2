"""Record a scripted run through the real SDK and the fake Messages API, then replay it.

Each acceptance flow of the factory runs twice: once recording (``cli.record_blueprint``:
the model's side scripted, served by :class:`fakes.anthropic.server.FakeMessagesAPI`
over HTTP to the real ``anthropic`` SDK, everything else real in a ``LocalSandbox``),
then again with the replay model on that transcript, answering its pauses the same way.
The replay fails loudly (``transcript_diverged``) if the second run sends any request
the first did not. Tests assert on the replayed run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fakeredis

from cli.record_blueprint import drive, record
from jobs.agent.config import AgentConfig
from jobs.blueprint.config import BlueprintConfig
from jobs.blueprint.deps import Deps
from jobs.blueprint.providers import ReplayProvider
from jobs.blueprint.wiring import sandbox_factory
from jobs.forge.local import LocalForge
from jobs.queue import RunQueue
from runs.events import Event
from runs.record import Run, RunStatus
from runs.store import RunStore
from sandboxes.cache import RepoCache
from tests.blueprint.conftest import REPO, SAMPLE


@dataclass
class Flow:
    """A scripted run: what is asked, the model's replies, and how pauses are answered."""

    name: str
    request: str
    replies: list[dict[str, Any]]
    answers: Sequence[str] = ()
    plan: bool = False
    agent: AgentConfig | None = None
    blueprint: dict[str, Any] | None = None
    repo_dir: Path = SAMPLE
    repo: str = REPO


@dataclass
class Replayed:
    """The replayed run, and what it left: its store, its forge, the transcript."""

    run: Run
    store: RunStore
    forge: LocalForge
    queue: RunQueue
    deps: Deps
    transcript: Path

    def events(self) -> list[Event]:
        return self.store.events(self.run.id)

    def requests(self) -> list[dict[str, Any]]:
        """The recorded requests, in order (the replay matched each of them)."""
        lines = self.transcript.read_text().splitlines()[1:]
        return [json.loads(line)["request"] for line in lines]


def record_flow(tmp: Path, flow: Flow) -> Path:
    """Record ``flow``; returns the transcript."""
    tmp.mkdir(parents=True, exist_ok=True)
    script = tmp / f"{flow.name}.script.json"
    script.write_text(json.dumps(flow.replies))
    out = tmp / "transcripts" / flow.name / f"{flow.name}.jsonl"
    recorded = record(
        repo_dir=flow.repo_dir,
        repo=flow.repo,
        request=flow.request,
        out=out,
        script=script,
        backend="local",
        note=flow.name,
        answers=flow.answers,
        plan=flow.plan,
        agent=flow.agent,
        blueprint=flow.blueprint,
    )
    assert recorded.status not in (RunStatus.RUNNING, RunStatus.QUEUED), recorded
    return out


@contextmanager
def replayed(
    tmp: Path, flow: Flow, transcript: Path, *, evaluation: bool = False
) -> Iterator[Replayed]:
    """Run ``flow`` again on the replay model, answering its pauses the same way; with
    ``evaluation``, as an eval task's run (``agents eval``)."""
    connection = fakeredis.FakeRedis()
    store = RunStore(connection)
    forge = LocalForge(tmp / "replay-forge")
    forge.create_repo(flow.repo, source=flow.repo_dir)
    deps = Deps(
        store=store,
        forge=forge,
        cache=RepoCache(tmp / "replay-cache"),
        sandboxes=sandbox_factory("local"),
        models=ReplayProvider(transcript),
        agent=flow.agent or AgentConfig(),
        config=BlueprintConfig(
            ci_timeout_seconds=0, sandbox_backend="local", **(flow.blueprint or {})
        ),
        workdir=tmp / "replay-publish",
    )
    queue = RunQueue(connection, store, name="replay")
    run = store.create(
        requester="U-recorder", repo=flow.repo, request=flow.request, plan_asked=flow.plan
    )
    if evaluation:
        run = store.update(run.id, lambda r: setattr(r, "evaluation", True))
    try:
        final = drive(deps, queue, run, flow.answers, by="test")
        yield Replayed(final, store, forge, queue, deps, transcript)
    finally:
        connection.close()


@contextmanager
def record_and_replay(tmp: Path, flow: Flow) -> Iterator[Replayed]:
    transcript = record_flow(tmp / "record", flow)
    with replayed(tmp / "replay", flow, transcript) as done:
        if done.run.status is RunStatus.AWAITING_DECISION:
            # Every recorded call was asked for again, in order.
            assert done.run.artifacts.model_calls == len(done.requests())
        yield done
