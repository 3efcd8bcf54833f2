"""Transcripts: record a run's model calls, and play them back without a model.

A transcript is a JSON Lines file (documented in ``docs/transcripts.md``): a header
line, then one line per model call with the request the loop sent and the response it
got (or, for a prompt the API found too long, that refusal; or, for a model that was
overloaded or kept failing, that failure, after which the loop fell back). :class:`RecordingModel`
writes one around any model; :class:`ReplayModel` answers from one and fails loudly,
naming the first difference, as soon as the loop sends a request the recording does
not have at that point.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobs.agent.model import Model, ModelResponse, OnRetry, Request
from process.exceptions import (
    ModelOverloaded,
    ModelUnavailable,
    PromptTooLong,
    TranscriptDiverged,
    TranscriptInvalid,
)

FORMAT = "agents-transcript"
VERSION = 1

#: Durations and other decimals ("5 passed in 0.03s") differ between a recording and
#: its replay; requests are compared with them masked.
_VOLATILE = re.compile(r"\d+\.\d+")


@dataclass(frozen=True)
class Exchange:
    """One model call: its request, and the response, or (``rejected``) the message of
    the "prompt is too long" refusal it got instead, or (``unavailable``) the status
    and message of the failure that outlasted the retries (529: at once)."""

    request: Request
    response: dict[str, Any] | None
    rejected: dict[str, Any] | None = None
    unavailable: dict[str, Any] | None = None


@dataclass(frozen=True)
class Transcript:
    header: dict[str, Any]
    exchanges: list[Exchange]

    @classmethod
    def load(cls, path: Path) -> Transcript:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not lines:
            raise TranscriptInvalid(f"{path} is empty")
        try:
            records = [json.loads(line) for line in lines]
        except json.JSONDecodeError as err:
            raise TranscriptInvalid(f"{path}:{err.lineno}: not JSON: {err.msg}") from err
        header = records[0]
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise TranscriptInvalid(
                f"{path} is not an {FORMAT} version {VERSION} file (header: {header!r:.200})"
            )
        exchanges = []
        for number, record in enumerate(records[1:], start=1):
            answered = (
                "response" in record
                or isinstance(record.get("rejected"), dict)
                or isinstance(record.get("unavailable"), dict)
            )
            if record.get("call") != number or "request" not in record or not answered:
                raise TranscriptInvalid(f"{path}: line {number + 1} is not call {number}")
            exchanges.append(
                Exchange(
                    record["request"],
                    record.get("response"),
                    record.get("rejected"),
                    record.get("unavailable"),
                )
            )
        return cls(header, exchanges)


class ReplayModel:
    """Plays back a transcript. Each request must match the recorded one."""

    def __init__(self, transcript: Transcript | Path) -> None:
        if isinstance(transcript, Path):
            transcript = Transcript.load(transcript)
        self.transcript = transcript
        self.calls = 0

    @property
    def remaining(self) -> int:
        return len(self.transcript.exchanges) - self.calls

    def complete(self, request: Request, *, on_retry: OnRetry | None = None) -> ModelResponse:
        recorded = self.transcript.exchanges
        number = self.calls + 1
        if self.calls >= len(recorded):
            raise TranscriptDiverged(
                f"the run made model call {number}, but the transcript ends after "
                f"{len(recorded)} calls"
            )
        expected = recorded[self.calls]
        difference = first_difference(_masked(expected.request), _masked(request))
        if difference is not None:
            raise TranscriptDiverged(
                f"model call {number} diverged from the transcript: {difference}"
            )
        self.calls = number
        if expected.response is None and expected.unavailable is not None:
            failure = expected.unavailable
            status = failure.get("status")
            kind = ModelOverloaded if status == 529 else ModelUnavailable
            raise kind(
                str(failure.get("message", "the model was unavailable")),
                attempts=int(failure.get("attempts", 1)),
                status=None if status is None else int(status),
            )
        if expected.response is None:
            rejected = expected.rejected or {}
            raise PromptTooLong(
                str(rejected.get("message", "prompt is too long")),
                status=int(rejected.get("status", 400)),
                setting=None,
            )
        return ModelResponse.from_api(expected.response)


class RecordingModel:
    """Wraps a model and writes every call it answers to a transcript file.

    The file is written line by line as the run goes, so a run that stops on a limit
    still leaves a transcript of what happened up to then. ``resume_at`` continues a
    transcript after that many calls (a run's iteration spans several jobs when it
    pauses for its plan or its budget).
    """

    def __init__(
        self,
        model: Model,
        path: Path,
        *,
        source: str,
        note: str = "",
        meta: Mapping[str, Any] | None = None,
        resume_at: int | None = None,
    ) -> None:
        self.model = model
        self.path = path
        self.calls = 0
        if resume_at and path.is_file():
            # A later job of the same iteration (after a pause, a drain, a crash): keep
            # the header and the calls the run has counted, and go on from there.
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            path.write_text("".join(lines[: resume_at + 1]), encoding="utf-8")
            self.calls = resume_at
            return
        header = {
            "format": FORMAT,
            "version": VERSION,
            "source": source,
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "note": note,
            **(meta or {}),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(header) + "\n", encoding="utf-8")

    def complete(self, request: Request, *, on_retry: OnRetry | None = None) -> ModelResponse:
        try:
            response = self.model.complete(request, on_retry=on_retry)
        except PromptTooLong as err:
            # The loop trims and asks again: the replay must refuse at the same call.
            self._write(request, rejected={"status": err.status, "message": str(err)})
            raise
        except ModelUnavailable as err:
            # The loop falls back to another model: the replay must fail here too.
            failure = {"status": err.status, "message": str(err), "attempts": err.attempts}
            self._write(request, unavailable=failure)
            raise
        self._write(request, response=response.to_api())
        return response

    def _write(self, request: Request, **outcome: dict[str, Any] | None) -> None:
        self.calls += 1
        line = {"call": self.calls, "request": request, **outcome}
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line, sort_keys=True) + "\n")


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return _VOLATILE.sub("#.#", value)
    if isinstance(value, list):
        return [_masked(item) for item in value]
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    return value


def first_difference(expected: Any, actual: Any, where: str = "request") -> str | None:
    """Where two JSON values first differ, and how; None if they are equal."""
    if type(expected) is not type(actual):
        return f"at {where}: recorded {_show(expected)}, got {_show(actual)}"
    if isinstance(expected, dict):
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                return f"at {where}: {key!r} is missing (recorded {_show(expected[key])})"
            if key not in expected:
                return f"at {where}: unexpected {key!r} = {_show(actual[key])}"
            found = first_difference(expected[key], actual[key], f"{where}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(expected, list):
        for index, (old, new) in enumerate(zip(expected, actual, strict=False)):
            found = first_difference(old, new, f"{where}[{index}]")
            if found is not None:
                return found
        if len(expected) != len(actual):
            return f"at {where}: recorded {len(expected)} items, got {len(actual)}"
        return None
    if isinstance(expected, str) and expected != actual:
        at = next(
            (i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
            min(len(expected), len(actual)),
        )
        start = max(0, at - 60)
        return (
            f"at {where}, character {at}: recorded {_show(expected[start : at + 60])}, "
            f"got {_show(actual[start : at + 60])}"
        )
    if expected != actual:
        return f"at {where}: recorded {_show(expected)}, got {_show(actual)}"
    return None


def _show(value: Any, limit: int = 160) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
