"""Record a whole-blueprint transcript: every model call of one iteration of a run.

The builder passes, fix rounds and the reviewer call go to one transcript, in order,
so ``AGENTS_MODEL_BACKEND=replay`` plays back the iteration. Offline, with
``--script``, the model's side is scripted and answered by the fake Messages API
through the real SDK; the tool results, checks and diffs are real, from the sandbox::

    python -m cli.record_blueprint --repo-dir examples/sample-repo --repo acme/retrying \\
        --request "make the retry limit configurable" \\
        --script examples/transcripts/blueprint/clean.script.json \\
        --out examples/transcripts/blueprint/clean.jsonl --backend docker

A rework iteration replays the earlier ones first (``--before``, one file per
iteration, in order) and records the next one, with ``--feedback`` (given by the
requester, or by ``--feedback-by``: ``github:octocat`` for a comment on the PR). A run that pauses
(for its plan, or at its budget) is answered in order by ``--answer``:
``approve-plan``, ``revise-plan:<feedback>``, ``extend`` or ``stop``; ``--plan`` asks
for a plan first. Record with the sandbox backend the replay will use: tool output
differs between Docker and the host.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, get_args

from fakes.anthropic import FakeMessagesAPI, load_script
from jobs import pauses
from jobs.agent.config import AgentConfig
from jobs.agent.model import Model
from jobs.blueprint.config import BlueprintConfig
from jobs.blueprint.deps import Deps, ModelProvider
from jobs.blueprint.providers import AnthropicProvider, RecordingProvider, ReplayProvider
from jobs.blueprint.runner import run_blueprint
from jobs.blueprint.wiring import sandbox_factory
from jobs.forge.local import LocalForge
from jobs.queue import RunQueue
from runs.record import Run, RunStatus
from runs.store import RunStore
from sandboxes import engine
from sandboxes.cache import RepoCache
from sandboxes.config import SandboxConfig
from sandboxes.factory import Backend

FAKE_KEY = "sk-ant-fake-messages-api"


class ByIteration:
    """A provider per iteration: earlier ones replayed, the last one recorded."""

    def __init__(self, providers: dict[int, ModelProvider]) -> None:
        self.providers = providers

    @contextmanager
    def open(self, run: Run) -> Iterator[Model]:
        with self.providers[run.iteration].open(run) as model:
            yield model


#: A paused run's answers, in the order the run pauses.
ANSWERS = ("approve-plan", "revise-plan:<feedback>", "extend", "stop")


def answer(queue: RunQueue, run: Run, said: str) -> Run:
    """Give a paused run one answer (:data:`ANSWERS`), as its requester."""
    kind, _, text = said.partition(":")
    user = run.requester
    if run.status is RunStatus.AWAITING_PLAN and kind == "approve-plan":
        return pauses.carry_out_plan_approval(queue, run.id, user)
    if run.status is RunStatus.AWAITING_PLAN and kind == "revise-plan" and text:
        return pauses.carry_out_plan_revision(queue, run.id, user, text)
    if run.status is RunStatus.AWAITING_BUDGET and kind == "extend":
        return pauses.carry_out_extension(queue, run.id, user)
    if run.status is RunStatus.AWAITING_BUDGET and kind == "stop":
        return pauses.carry_out_stop(queue, run.id, user)
    raise ValueError(f"run {run.label} is {run.status.value}; {said!r} does not answer that")


def drive(deps: Deps, queue: RunQueue, run: Run, answers: Sequence[str], *, by: str) -> Run:
    """Run the blueprint, giving the run ``answers`` in order each time it pauses, until
    it awaits a decision, ends, or pauses with no answer left."""
    waiting = (RunStatus.AWAITING_PLAN, RunStatus.AWAITING_BUDGET)
    left = list(answers)
    run = run_blueprint(deps, run.id, by=by)
    while run.status in waiting and left:
        answer(queue, run, left.pop(0))
        run = run_blueprint(deps, run.id, by=by)
    if left:
        raise RuntimeError(f"{run.label} ended {run.status.value} with answers left: {left}")
    return run


def record(
    *,
    repo_dir: Path,
    repo: str,
    request: str,
    out: Path,
    script: Path,
    before: Sequence[Path] = (),
    feedback: Sequence[str] = (),
    feedback_by: str | None = None,
    backend: Backend = "docker",
    context: str | None = None,
    note: str = "",
    image: str | None = None,
    answers: Sequence[str] = (),
    plan: bool = False,
    agent: AgentConfig | None = None,
    blueprint: dict[str, Any] | None = None,
) -> Run:
    """Run the blueprint on ``repo_dir`` and record the last iteration to ``out``.

    ``answers`` answer the last iteration's pauses; ``plan`` asks for a plan first;
    ``agent`` and ``blueprint`` change the agent's configuration and the blueprint's
    settings (a replay must use the same)."""
    if len(feedback) != len(before):
        raise ValueError("give one --feedback for each --before transcript")
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agents-rec-")))
        api = stack.enter_context(FakeMessagesAPI(load_script(script), api_key=FAKE_KEY))
        iteration = len(before) + 1
        meta = {
            "task": {"repo": repo, "request": request},
            "role": "blueprint",
            "model": AgentConfig().roles.model_builder,
        }
        providers: dict[int, ModelProvider] = {
            n: ReplayProvider(path) for n, path in enumerate(before, 1)
        }
        providers[iteration] = RecordingProvider(
            AnthropicProvider(FAKE_KEY, base_url=api.base_url, retry=AgentConfig().retry),
            out,
            source="fake-messages-api",
            meta={
                **meta,
                "note": note or f"scripted replies from {script.name}; usage is scripted",
            },
        )
        import fakeredis  # a development dependency, like this tool

        connection = fakeredis.FakeRedis()
        stack.callback(connection.close)
        store = RunStore(connection)
        forge = LocalForge(scratch / "forge")
        forge.create_repo(repo, source=repo_dir)
        deps = Deps(
            store=store,
            forge=forge,
            cache=RepoCache(scratch / "cache"),
            sandboxes=sandbox_factory(backend),
            models=ByIteration(providers),
            agent=agent or AgentConfig(),
            config=BlueprintConfig(
                ci_timeout_seconds=0,
                sandbox_backend=backend,
                sandbox=SandboxConfig(image=image) if image else SandboxConfig(),
                **(blueprint or {}),
            ),
            workdir=scratch / "publish",
            image_id=engine.image_id if backend != "local" else (lambda image: None),
        )
        run = store.create(
            requester="U-recorder", repo=repo, request=request, context=context, plan_asked=plan
        )
        queue = RunQueue(connection, store, name="record")
        for text in feedback:
            run = run_blueprint(deps, run.id, by="recorder")
            if run.status is not RunStatus.AWAITING_DECISION:
                raise RuntimeError(f"iteration {run.iteration} ended {run.status}: {run.error}")
            queue.request_rework(run.id, by=feedback_by or run.requester, feedback=text)
        return drive(deps, queue, store.get(run.id), answers, by="recorder")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cli.record_blueprint",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repo-dir", type=Path, required=True)
    parser.add_argument("--repo", required=True, help="owner/name the run targets")
    parser.add_argument("--request", required=True)
    parser.add_argument("--script", type=Path, required=True, help="scripted model replies")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--before", type=Path, action="append", default=[])
    parser.add_argument("--feedback", action="append", default=[])
    parser.add_argument(
        "--feedback-by",
        help="who gives the feedback (default: the requester); github:<login> for a "
        "comment on the pull request",
    )
    parser.add_argument("--context", help="earlier thread messages, as the bot passes them")
    parser.add_argument("--backend", default="docker", choices=get_args(Backend))
    parser.add_argument("--image", help="sandbox image (default: agents-sandbox:latest)")
    parser.add_argument("--plan", action="store_true", help="ask for a plan first")
    parser.add_argument(
        "--answer",
        action="append",
        default=[],
        help=f"answer the next pause: {', '.join(ANSWERS)}",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    run = record(
        repo_dir=args.repo_dir,
        repo=args.repo,
        request=args.request,
        out=args.out,
        script=args.script,
        before=args.before,
        feedback=args.feedback,
        feedback_by=args.feedback_by,
        backend=args.backend,
        context=args.context,
        image=args.image,
        answers=args.answer,
        plan=args.plan,
    )
    print(f"run {run.label} iteration {run.iteration}: {run.status.value}", file=sys.stderr)
    if run.error:
        print(f"error: {run.error}", file=sys.stderr)
    print(run.artifacts.patch or "")
    return 0 if run.status is RunStatus.AWAITING_DECISION else 1


if __name__ == "__main__":
    raise SystemExit(main())
