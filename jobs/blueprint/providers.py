"""The model a job talks to: the real API, or a recorded transcript played back.

A run's iteration is one conversation stream: builder passes, fix rounds and the
reviewer call one model, in order. The run record counts the calls answered
(``artifacts.model_calls``), so a job that resumes a run after a crash continues a
replayed transcript where the last completed step left it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jobs.agent.config import ModelRetry
from jobs.agent.model import (
    AnthropicModel,
    Model,
    ModelResponse,
    OnRetry,
    Request,
    anthropic_client,
)
from jobs.agent.replay import FORMAT, RecordingModel, ReplayModel
from process.exceptions import ModelUnavailable, PromptTooLong, TranscriptInvalid
from runs.record import Run


def prompt_hash(request: Request) -> str:
    """sha256 of what stays fixed in a role's requests: the system prompt and tools."""
    stable = {"system": request.get("system"), "tools": request.get("tools")}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()


class CountingModel:
    """Counts the calls made (from ``start``) and remembers the last prompt hash.

    A call refused as too long, or failed for good (the loop then falls back to
    another model), counts too: a transcript records it as a call, so a replay resumed
    from this count starts at the right one.
    """

    def __init__(self, model: Model, start: int = 0) -> None:
        self.model = model
        self.calls = start
        self.last_prompt_hash: str | None = None

    def complete(self, request: Request, *, on_retry: OnRetry | None = None) -> ModelResponse:
        self.last_prompt_hash = prompt_hash(request)
        try:
            response = self.model.complete(request, on_retry=on_retry)
        except (PromptTooLong, ModelUnavailable):
            self.calls += 1
            raise
        self.calls += 1
        return response


def _header(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        first = handle.readline()
    try:
        header = json.loads(first)
    except json.JSONDecodeError:
        return {}
    return header if isinstance(header, dict) and header.get("format") == FORMAT else {}


def find_transcript(source: Path, run: Run) -> Path:
    """The transcript for ``run``'s current iteration.

    ``source`` is a file (used for every run) or a directory: then the file whose header
    has the run's request (``task.request``) and iteration (``iteration``, default 1).
    """
    if source.is_file():
        return source
    if not source.is_dir():
        raise TranscriptInvalid(f"no transcript at {source}")
    for path in sorted(source.glob("*.jsonl")):
        header = _header(path)
        task = header.get("task") or {}
        if task.get("request") == run.request and int(header.get("iteration", 1)) == run.iteration:
            return path
    raise TranscriptInvalid(
        f"no transcript in {source} for request {run.request!r}, iteration {run.iteration}"
    )


class ReplayProvider:
    """Plays back recorded transcripts (``AGENTS_MODEL_BACKEND=replay``)."""

    def __init__(self, source: Path) -> None:
        self.source = source

    @contextmanager
    def open(self, run: Run) -> Iterator[Model]:
        model = ReplayModel(find_transcript(self.source, run))
        model.calls = run.artifacts.model_calls
        yield model


class AnthropicProvider:
    """The real Messages API; one SDK client per job, closed when the job ends."""

    def __init__(self, api_key: str, *, base_url: str | None, retry: ModelRetry) -> None:
        self._api_key = api_key
        self.base_url = base_url
        self.retry = retry

    def __repr__(self) -> str:
        return f"AnthropicProvider(base_url={self.base_url!r})"

    @contextmanager
    def open(self, run: Run) -> Iterator[Model]:
        client = anthropic_client(api_key=self._api_key, base_url=self.base_url)
        try:
            yield AnthropicModel(client, retry=self.retry)
        finally:
            client.close()


class RecordingProvider:
    """Wraps another provider and writes each job's calls to a transcript (recording)."""

    def __init__(self, inner: Any, path: Path, *, source: str, meta: dict[str, Any]) -> None:
        self.inner = inner
        self.path = path
        self.source = source
        self.meta = meta

    @contextmanager
    def open(self, run: Run) -> Iterator[Model]:
        with self.inner.open(run) as model:
            yield RecordingModel(
                model,
                self.path,
                source=self.source,
                meta={**self.meta, "iteration": run.iteration},
                resume_at=run.artifacts.model_calls,
            )
