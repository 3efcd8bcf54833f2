"""The plan step's price: a run that plans first against the same run without a plan.

Both runs ask "make the retry limit configurable" of the sample repository and build
the same change with the same builder and reviewer replies (the recorded ``clean``
script); the planned run first has a planner read the module and its tests and submit
a spec, which is approved at once (a person's reading time is not counted). Each is
recorded once through the real ``anthropic`` SDK against the fake Messages API
(:func:`cli.record_blueprint.record`, in the chosen sandbox), then replayed ``rounds``
times, alternately, through the blueprint in this process (``run_blueprint``, real
Redis, local forge): wall time from the run's first job to awaiting its decision.

The replay model answers at once, so the added wall time is what the plan costs
besides the model: the planner's tool calls, the checkpointed pause, and the second
job that builds (a new sandbox, the workspace prepared again). A real planner adds its
model time on top (a few turns of the planner's model).

Cost: the fake's token counts are scripted, so every call is priced on its size
instead: the request as sent (system prompt, tools, messages) at 4 characters a token,
billed as fresh input, and the reply at the same rate as output, at the prices of the
model each role used (the planner's is ``claude-opus-5-5`` by default). Prompt caching
lowers both runs' cost; the share is the figure to read.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis

from bench.stack import DEMO_REPO, DEMO_REQUEST, ROOT
from bench.stats import Figure, Result
from cli.commands.demo import SAMPLE
from cli.record_blueprint import drive, record
from fakes.anthropic import message, tool_use
from jobs.agent.config import AgentConfig
from jobs.agent.pricing import DEFAULT_PRICES, Usage
from jobs.agent.replay import Transcript
from jobs.blueprint.config import BlueprintConfig
from jobs.blueprint.deps import Deps
from jobs.blueprint.providers import ReplayProvider
from jobs.blueprint.wiring import sandbox_factory
from jobs.forge.local import LocalForge
from jobs.queue import RunQueue
from runs.record import RunStatus
from runs.store import RunStore
from sandboxes.cache import RepoCache
from sandboxes.factory import Backend

CLEAN_SCRIPT = ROOT / "examples" / "transcripts" / "blueprint" / "clean.script.json"
#: Characters per token, for pricing calls by their size (English text and code).
CHARS_PER_TOKEN = 4

PLAN = {
    "problem": "`call_with_retry` always tries MAX_ATTEMPTS (3) times; callers cannot choose.",
    "constraints": ["Existing callers keep today's behaviour.", "Standard library only."],
    "approach": "A keyword-only `max_attempts` parameter on `call_with_retry`, defaulting "
    "to MAX_ATTEMPTS; values below 1 raise ValueError.",
    "acceptance_criteria": [
        "`call_with_retry(fn, max_attempts=5)` tries five times",
        "Without `max_attempts` it still tries 3 times",
        "`max_attempts=0` raises ValueError",
    ],
    "risks": ["Callers passing positional arguments: the parameter is keyword-only."],
    "tasks": ["Add the parameter", "Test a custom limit and invalid limits"],
}


def planner_replies() -> list[dict[str, Any]]:
    """A planner that reads the module and its tests, then submits :data:`PLAN`."""
    read = [
        tool_use("toolu_p1", "read_file", {"path": "retrying/retry.py"}),
        tool_use("toolu_p2", "read_file", {"path": "tests/test_retry.py"}),
    ]
    return [message(*read), message(tool_use("toolu_p3", "submit_plan", PLAN))]


@dataclass(frozen=True)
class Variant:
    name: str
    plan: bool
    transcript: Path


def record_variants(work: Path, sandbox: str) -> list[Variant]:
    clean = json.loads(CLEAN_SCRIPT.read_text(encoding="utf-8"))
    variants = []
    for name, plan in (("without", False), ("with", True)):
        script = work / f"{name}.script.json"
        script.write_text(json.dumps((planner_replies() if plan else []) + clean))
        out = work / name / "transcript.jsonl"
        run = record(
            repo_dir=SAMPLE,
            repo=DEMO_REPO,
            request=DEMO_REQUEST,
            out=out,
            script=script,
            backend=cast(Backend, sandbox),
            note=f"bench: a run {name} a plan",
            answers=["approve-plan"] if plan else [],
            plan=plan,
        )
        if run.status is not RunStatus.AWAITING_DECISION:
            raise RuntimeError(f"recording the run {name} a plan ended {run.status.value}")
        variants.append(Variant(name, plan, out))
    return variants


def replay_once(conn: redis.Redis, work: Path, sandbox: str, variant: Variant, n: int) -> float:
    """Seconds from the run's first job to awaiting its decision."""
    store = RunStore(conn)
    scratch = work / f"{variant.name}-{n}"
    forge = LocalForge(scratch / "forge")
    forge.create_repo(DEMO_REPO, source=SAMPLE)
    deps = Deps(
        store=store,
        forge=forge,
        cache=RepoCache(scratch / "cache"),
        sandboxes=sandbox_factory(cast(Backend, sandbox)),
        models=ReplayProvider(variant.transcript),
        agent=AgentConfig(),
        config=BlueprintConfig(ci_timeout_seconds=0, sandbox_backend=cast(Backend, sandbox)),
        workdir=scratch / "publish",
    )
    queue = RunQueue(conn, store, name="bench-plan")
    run = store.create(
        requester="U-bench", repo=DEMO_REPO, request=DEMO_REQUEST, plan_asked=variant.plan
    )
    answers = ["approve-plan"] if variant.plan else []
    started = time.perf_counter()
    final = drive(deps, queue, run, answers, by="bench")
    seconds = time.perf_counter() - started
    if final.status is not RunStatus.AWAITING_DECISION:
        raise RuntimeError(f"the run {variant.name} a plan ended {final.status.value}")
    return seconds


def estimated_cost(transcript: Path) -> tuple[float, int]:
    """Dollars of every call, priced on its size (see the module's docstring), and
    the number of calls."""
    dollars = 0.0
    exchanges = Transcript.load(transcript).exchanges
    for exchange in exchanges:
        request = exchange.request
        sent = {key: request.get(key) for key in ("system", "tools", "messages")}
        reply = (exchange.response or {}).get("content") or []
        usage = Usage(
            input_tokens=len(json.dumps(sent)) // CHARS_PER_TOKEN,
            output_tokens=len(json.dumps(reply)) // CHARS_PER_TOKEN,
        )
        dollars += DEFAULT_PRICES.cost(str(request.get("model")), usage).dollars
    return dollars, len(exchanges)


def run(conn: redis.Redis, sandbox: str, rounds: int, *, warm_up: bool = True) -> Result:
    """``warm_up``: one replay first, not counted (off for ``--quick``, whose figures
    are not kept: the recordings already ran the same imports, mirror and image)."""
    with tempfile.TemporaryDirectory(prefix="agents-bench-plan-") as tmp:
        work = Path(tmp)
        without, with_plan = record_variants(work, sandbox)
        if warm_up:
            replay_once(conn, work, sandbox, without, 0)  # imports, mirror, image
        plain: list[float] = []
        planned: list[float] = []
        for n in range(1, rounds + 1):
            plain.append(replay_once(conn, work, sandbox, without, n))
            planned.append(replay_once(conn, work, sandbox, with_plan, n))
        cost_without, calls_without = estimated_cost(without.transcript)
        cost_with, calls_with = estimated_cost(with_plan.transcript)
    added = [p / q - 1 for p, q in zip(planned, plain, strict=True)]
    how = (
        f"{rounds} pair(s) of replayed runs, alternated, {sandbox} sandbox, local forge, "
        "real Redis; first job to awaiting decision, the plan approved at once; model time 0"
    )
    time_figure = Figure(
        name="plan step: added wall time per run, share of a run without it",
        unit="%",
        samples=added,
        how=how,
        scale=100,
        decimals=0,
        baseline_label="run without a plan",
    )
    cost_figure = Figure(
        name="plan step: added cost per run, share of a run without it (estimated)",
        unit="%",
        samples=[cost_with / cost_without - 1],
        how=f"every call priced on its size at {CHARS_PER_TOKEN} characters a token, "
        "fresh input, each role's model (planner: claude-opus-5-5)",
        scale=100,
        decimals=0,
    )
    details = "\n".join(
        [
            "| run | model calls | wall time, median | estimated cost |",
            "|---|---|---|---|",
            f"| without a plan | {calls_without} | {statistics.median(plain):.2f} s "
            f"| ${cost_without:.4f} |",
            f"| with a plan (planner, Approve, build) | {calls_with} "
            f"| {statistics.median(planned):.2f} s | ${cost_with:.4f} |",
            "",
            "The planner here makes 2 calls (it reads the module and its tests, then "
            "submits the plan); the added cost grows with the planner's exploration. The "
            "added wall time is the planner's tool calls, the pause, and the second job "
            "that prepares a new sandbox to build; a real model adds its own time.",
        ]
    )
    return Result([time_figure, cost_figure], details=details)
