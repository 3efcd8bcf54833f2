"""The model a job talks to: the real API, a recorded transcript played back, or one of
the two built-in models of ``agents eval`` (oracle and null).

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
from jobs.agent.pricing import Usage
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


# -- the two built-in models of ``agents eval`` ----------------------------------------
#
# They need no key and prove the harness honest: the oracle applies the task's true
# change and must resolve every task; the null model changes nothing and must resolve
# none. They are models like the replay (answers to Messages API request bodies, tool
# calls the loop runs in the sandbox), not imitations of the API: no HTTP, no SDK.

ORACLE_PATCH_FILE = ".agents-oracle.patch"
_APPLY = (
    f'f={ORACLE_PATCH_FILE}; if git apply --reverse --check "$f" >/dev/null 2>&1; '
    'then s=0; echo "the true change is already applied"; '
    'else git apply --whitespace=nowarn "$f"; s=$?; fi; rm -f "$f"; exit $s'
)


def _answer(request: Request, content: list[dict[str, Any]], name: str) -> ModelResponse:
    return ModelResponse(
        content=content,
        stop_reason="tool_use",
        usage=Usage(),
        model=str(request.get("model", name)),
        id=f"msg_{name}",
    )


def _offers(request: Request, tool: str) -> bool:
    """Whether the request offers ``tool``: a role's ending tool names the role."""
    tools = request.get("tools") or []
    return any(isinstance(spec, dict) and spec.get("name") == tool for spec in tools)


def _not_building(request: Request, name: str) -> ModelResponse | None:
    """The answer of a pass that is not the builder's: the reviewers approve, so the
    task reaches grading; the debugger reports nothing to find. None for the builder."""
    if _offers(request, "verdict"):
        notes = f"The {name} model does not review; it approves so the task reaches grading."
        return _call(request, name, "verdict", {"verdict": "approve", "notes": notes})
    if _offers(request, "root_cause"):
        said = f"The {name} model does not debug."
        return _call(request, name, "root_cause", {"root_cause": said, "fix": said})
    return None


def _call(request: Request, name: str, tool: str, given: dict[str, Any]) -> ModelResponse:
    call = {"type": "tool_use", "id": f"toolu_{name}_{tool}", "name": tool, "input": given}
    return _answer(request, [call], name)


def _finish(request: Request, name: str, summary: str) -> ModelResponse:
    return _call(request, name, "finish", {"summary": summary, "notes_for_reviewer": ""})


def _last_tool_results(request: Request) -> list[dict[str, Any]]:
    messages = request.get("messages") or []
    if not messages or messages[-1].get("role") != "user":
        return []
    content = messages[-1].get("content")
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


class OracleModel:
    """Applies the task's true change (a patch), then finishes; approves as reviewer,
    and finds nothing as debugger.

    Each pass (the first, a fix round, a rework) writes the patch into the workspace and
    applies it unless it is already there, then reads the outcome and finishes.
    """

    name = "oracle"

    def __init__(self, patch: str) -> None:
        self.patch = patch

    def complete(self, request: Request, *, on_retry: OnRetry | None = None) -> ModelResponse:
        other = _not_building(request, self.name)
        if other is not None:
            return other
        results = _last_tool_results(request)
        if not results:
            write = {
                "type": "tool_use",
                "id": "toolu_oracle_write",
                "name": "write_file",
                "input": {"path": ORACLE_PATCH_FILE, "content": self.patch},
            }
            apply = {
                "type": "tool_use",
                "id": "toolu_oracle_apply",
                "name": "run",
                "input": {"command": _APPLY},
            }
            return _answer(request, [write, apply], self.name)
        text = "\n".join(_result_text(block) for block in results)
        if any(block.get("is_error") for block in results) or "exit code: 0" not in text:
            return _finish(request, self.name, f"The true change does not apply: {text[:500]}")
        return _finish(request, self.name, "Applied the task's true change (oracle model).")


class NullModel:
    """Changes nothing: finishes at once; approves as reviewer, finds nothing as debugger."""

    name = "null"

    def complete(self, request: Request, *, on_retry: OnRetry | None = None) -> ModelResponse:
        other = _not_building(request, self.name)
        if other is not None:
            return other
        return _finish(request, self.name, "The null model changes nothing.")


class OracleProvider:
    """``--model oracle`` for one eval task: the task's true change is its answer."""

    def __init__(self, patch: str) -> None:
        self.patch = patch

    @contextmanager
    def open(self, run: Run) -> Iterator[Model]:
        yield OracleModel(self.patch)


class NullProvider:
    """``--model null``: a model that changes nothing."""

    @contextmanager
    def open(self, run: Run) -> Iterator[Model]:
        yield NullModel()
