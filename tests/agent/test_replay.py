"""Transcripts: the sample replays deterministically, divergence fails loudly, and the
recorder reproduces the committed sample through the real SDK."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import record_agent as record
from fakes.anthropic import Failure, FakeMessagesAPI, message, tool_use
from jobs.agent.loop import AgentResult, run_agent
from jobs.agent.model import AnthropicModel
from jobs.agent.prompt import Task
from jobs.agent.recorders import MemoryRecorder
from jobs.agent.replay import RecordingModel, ReplayModel, Transcript, first_difference
from jobs.blueprint.providers import CountingModel
from process.exceptions import TranscriptDiverged, TranscriptInvalid
from sandboxes.cache import WorkspaceArchive as SampleArchive
from sandboxes.local_sandbox import LocalSandbox
from tests.agent.conftest import ROOT, SAMPLE_REPO

TRANSCRIPTS = ROOT / "examples" / "transcripts"
SAMPLE = TRANSCRIPTS / "sample-retry.jsonl"
SCRIPT = TRANSCRIPTS / "sample-retry.script.json"


def sample_task(transcript: Transcript) -> Task:
    return Task(**transcript.header["task"])


def replay(sandbox: LocalSandbox, model: ReplayModel) -> tuple[AgentResult, MemoryRecorder]:
    recorder = MemoryRecorder()
    result = run_agent(
        sample_task(model.transcript), sandbox=sandbox, model=model, recorder=recorder
    )
    return result, recorder


@pytest.mark.slow
def test_the_sample_transcript_replays_deterministically(
    sample_archive: SampleArchive, tmp_path: Path
) -> None:
    transcript = Transcript.load(SAMPLE)
    assert transcript.header["source"] == "fake-messages-api"
    outcomes = []
    for attempt in range(2):
        with LocalSandbox(f"replay-{attempt}", workspace=sample_archive, parent=tmp_path) as box:
            model = ReplayModel(transcript)
            result, recorder = replay(box, model)
            assert model.remaining == 0
            outcomes.append(
                (
                    result,
                    box.export_patch(),
                    [e.model_dump(exclude={"at", "id"}) for e in recorder.events],
                )
            )
    (result, patch, events), again = outcomes
    assert again == outcomes[0]
    assert result.summary.startswith("Made the retry limit configurable")
    assert result.turns == 6
    assert b"+    max_attempts: int = MAX_ATTEMPTS," in patch
    assert b"+def test_the_limit_is_configurable() -> None:" in patch
    # The recorded run read a missing file once, and recovered.
    first_turn = next(e for e in events if e.get("turn") == 1)
    assert [c["is_error"] for c in first_turn["calls"]] == [False, True]


def test_a_changed_repository_diverges_loudly(sandbox: LocalSandbox, workspace: Path) -> None:
    (workspace / "retrying" / "retry.py").write_text("MAX_ATTEMPTS = 4\n")
    model = ReplayModel(SAMPLE)
    with pytest.raises(TranscriptDiverged) as caught:
        replay(sandbox, model)
    message = str(caught.value)
    assert message.startswith("model call 3 diverged from the transcript: at request.messages[")
    assert "MAX_ATTEMPTS = 4" in message


def test_a_changed_request_diverges_at_the_first_call(sandbox: LocalSandbox) -> None:
    model = ReplayModel(SAMPLE)
    task = Task(repo="acme/retrying", request="delete the tests", check_command="x")
    recorder = MemoryRecorder()
    with pytest.raises(TranscriptDiverged, match=r"model call 1 .* request\.system\[0\]\.text"):
        run_agent(task, sandbox=sandbox, model=model, recorder=recorder)
    assert recorder.stops[0][0] == "transcript_diverged"


def test_asking_past_the_end_of_a_transcript_diverges(
    sandbox: LocalSandbox, tmp_path: Path
) -> None:
    short = tmp_path / "short.jsonl"
    short.write_text("\n".join(SAMPLE.read_text().splitlines()[:3]) + "\n")
    with pytest.raises(TranscriptDiverged, match="made model call 3, but the transcript ends"):
        replay(sandbox, ReplayModel(short))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "is empty"),
        ("{not json\n", "not JSON"),
        ('{"format": "other", "version": 1}\n', "is not an agents-transcript version 1 file"),
        (
            '{"format": "agents-transcript", "version": 1}\n{"call": 2, "request": {}, '
            '"response": {}}\n',
            "line 2 is not call 1",
        ),
    ],
)
def test_malformed_transcripts_are_refused(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(content)
    with pytest.raises(TranscriptInvalid, match=problem):
        Transcript.load(path)


@pytest.mark.slow
def test_the_recorder_reproduces_the_sample_through_the_real_sdk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "recorded.jsonl"
    header = Transcript.load(SAMPLE).header
    code = record.main(
        [
            "--repo-dir",
            str(SAMPLE_REPO),
            "--repo",
            header["task"]["repo"],
            "--request",
            header["task"]["request"],
            "--check",
            header["task"]["check_command"],
            "--script",
            str(SCRIPT),
            "--out",
            str(out),
            "--backend",
            "local",
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert printed.out.startswith("Made the retry limit configurable")
    assert "+    max_attempts: int = MAX_ATTEMPTS," in printed.out
    assert "6 calls" in printed.err
    fresh, committed = Transcript.load(out), Transcript.load(SAMPLE)
    assert fresh.header["source"] == "fake-messages-api"
    assert {k: v for k, v in fresh.header.items() if k != "recorded_at"} == {
        k: v for k, v in committed.header.items() if k != "recorded_at"
    }
    assert len(fresh.exchanges) == len(committed.exchanges) == 6
    for new, old in zip(fresh.exchanges, committed.exchanges, strict=True):
        assert first_difference(old.response, new.response) is None
        # Requests match up to durations; ReplayModel compares them the same way.
        ReplayModel(Transcript(committed.header, [old])).complete(new.request)


def test_first_difference_names_the_place() -> None:
    assert first_difference({"a": [1, 2]}, {"a": [1, 2]}) is None
    assert first_difference({"a": [1, 2]}, {"a": [1, 3]}) == "at request.a[1]: recorded 2, got 3"
    assert first_difference({"a": 1}, {}) == "at request: 'a' is missing (recorded 1)"
    assert first_difference([1], [1, 2]) == "at request: recorded 1 items, got 2"
    found = first_difference("x" * 100 + "abc", "x" * 100 + "abd")
    assert found is not None
    assert found.startswith("at request, character 102:")


def test_replay_returns_recorded_responses_unchanged() -> None:
    transcript = Transcript.load(SAMPLE)
    model = ReplayModel(transcript)
    response = model.complete(transcript.exchanges[0].request)
    assert response.to_api()["content"] == transcript.exchanges[0].response["content"]
    assert response.to_api()["usage"] == transcript.exchanges[0].response["usage"]
    assert model.remaining == 5


def test_a_prompt_refused_as_too_long_is_recorded_and_replayed(
    api: FakeMessagesAPI,
    model: AnthropicModel,
    sample_archive: SampleArchive,
    tmp_path: Path,
) -> None:
    """The loop trims and asks again; the replay must see the same refusal at the same
    call, or the trimmed request would not match the recording."""
    api.add(
        message(tool_use("toolu_1", "read_file", {"path": "retrying/retry.py"})),
        message(tool_use("toolu_2", "read_file", {"path": "tests/test_retry.py"})),
        Failure(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000"),
        message(tool_use("toolu_3", "finish", {"summary": "done", "notes_for_reviewer": "-"})),
    )
    path = tmp_path / "trimmed.jsonl"
    task = Task(repo="acme/retrying", request="look around", check_command="true")
    recording = RecordingModel(model, path, source="fake-messages-api", meta={})
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with LocalSandbox("rec", workspace=sample_archive, parent=tmp_path / "a") as box:
        recorded = run_agent(task, sandbox=box, model=recording, recorder=MemoryRecorder())

    transcript = Transcript.load(path)
    assert [e.response is None for e in transcript.exchanges] == [False, False, True, False]
    assert "prompt is too long" in str(transcript.exchanges[2].rejected)
    replaying = ReplayModel(transcript)
    counting = CountingModel(replaying)  # what the blueprint saves as model_calls
    with LocalSandbox("rep", workspace=sample_archive, parent=tmp_path / "b") as box:
        replayed = run_agent(task, sandbox=box, model=counting, recorder=MemoryRecorder())
    assert replaying.remaining == 0
    # A replay resumed from the saved count must start at the transcript's next call,
    # so the refused call counts.
    assert counting.calls == replaying.calls == len(transcript.exchanges)
    assert (replayed.summary, replayed.turns) == (recorded.summary, recorded.turns) == ("done", 3)
