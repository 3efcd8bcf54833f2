"""Whole runs through every part: orchestration overhead and Slack API calls per run.

Each run starts as a mention in the emulator and goes through the bot over HTTP, the
Redis queue, real ``agents worker`` processes (replay model, local forge, the chosen
sandbox) and the reporter, until the decision message (Approve / Rework) is in the
thread; then the requester approves. Runs go one at a time, so the workers are idle
when each mention arrives.

Overhead is the run's total (mention sent -> the run awaits a decision, from its event
log) minus model time and check time; the reporter's hop after that (the decision
message reaching the thread, which waits out the reporter's once-a-second coalescing)
is shown in the breakdown and in the whole-run row. The replay model answers from a
file, so model time is taken as zero and the replay's own work counts as overhead.
Check time is the check commands' own durations (the checks step's reports) plus the
agent's turns that only ran the check command (each turn's whole duration, an upper
bound).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from typing import Any

import redis

from bench.stack import (
    CHANNEL,
    DEMO_REQUEST,
    REQUESTER,
    Stack,
    is_settled,
    slack_stack,
    wait_until,
)
from bench.stats import Figure, Result, Target
from fakes.slack.webapi import ApiCall
from runs.events import AgentTurn, Event, RunCreated, StatusChanged, StepStarted
from runs.record import Run, RunStatus

QUEUE = "bench-runs"


def quiet(stack: Stack, seconds: float = 1.6, limit: float = 60) -> None:
    """Wait until the bot made no Slack call for ``seconds`` (the reporter coalesces
    updates into at most one per second)."""
    emu = stack.emu

    def settled() -> bool:
        calls = emu.calls()
        return not calls or time.monotonic() - calls[-1].at >= seconds

    wait_until(settled, limit, "the thread to settle", every=0.1)


def decision_call(stack: Stack, ts: str) -> ApiCall | None:
    for call in stack.emu.calls("chat.postMessage"):
        if call.args.get("thread_ts") == ts and "agents_approve" in json.dumps(call.args):
            return call
    return None


def one_run(stack: Stack, procs: Any) -> dict[str, Any]:
    emu, store = stack.emu, stack.services.store
    wall0, mono0 = time.time(), time.monotonic()
    first_call = len(emu.calls())
    ts, _ = emu.mention(REQUESTER, CHANNEL, DEMO_REQUEST)
    run: Run = wait_until(lambda: store.find_by_thread(CHANNEL, ts), 30, "the run", procs)
    wait_until(lambda: is_settled(store.get(run.id).status), 300, "the run", procs, every=0.05)
    settled = store.get(run.id)
    if settled.status is not RunStatus.AWAITING_DECISION:
        raise RuntimeError(f"run {settled.label} ended {settled.status.value}: {settled.error}")
    decided = wait_until(lambda: decision_call(stack, ts), 30, "the decision message", procs)
    quiet(stack)
    to_decision = emu.calls()[first_call:]
    final = store.get(run.id)
    events = store.events(run.id)
    approve_from = len(emu.calls())
    if final.status is RunStatus.AWAITING_DECISION:
        decision_ts = decided.response["ts"] if decided.response else ""
        emu.click(REQUESTER, CHANNEL, decision_ts, "agents_approve")
        wait_until(lambda: store.get(run.id).status.is_final, 120, "the approval", procs)
        wait_until(
            lambda: any(
                c.args.get("thread_ts") == ts and "approved by" in str(c.args.get("text"))
                for c in emu.calls("chat.postMessage")[-5:]
            ),
            30,
            "the approval message",
            procs,
        )
        quiet(stack)
    approval = emu.calls()[approve_from:]
    return {
        "run": final,
        "events": events,
        "total": decided.at - mono0,
        "wall0": wall0,
        "decision_wall": wall0 + (decided.at - mono0),
        "to_decision": to_decision,
        "approval": approval,
        "approved": store.get(run.id).status is RunStatus.APPROVED,
    }


def breakdown(sample: dict[str, Any]) -> tuple[list[tuple[str, float]], float, float]:
    """Per-hop seconds from the run's event log, the check time inside them, and the
    time from the mention to the run awaiting a decision."""
    events: list[Event] = sample["events"]
    run: Run = sample["run"]

    def at(event: Event) -> float:
        return event.at.timestamp()

    created = next(e for e in events if isinstance(e, RunCreated))
    running = next(e for e in events if isinstance(e, StatusChanged) and e.to is RunStatus.RUNNING)
    awaiting = next(
        e for e in events if isinstance(e, StatusChanged) and e.to is RunStatus.AWAITING_DECISION
    )
    hops = [
        ("bot: mention sent → run recorded and enqueued", at(created) - sample["wall0"]),
        ("queue: enqueued → worker starts the run", at(running) - at(created)),
    ]
    steps = [e for e in events if isinstance(e, StepStarted)]
    marks: list[Event] = [*steps, awaiting]
    check_names = {
        str(c.get("run", "")).split(" --junitxml")[0]
        for c in (run.artifacts.config or {}).get("checks", [])
    }
    check_time = sum(
        result.duration for report in run.artifacts.check_reports for result in report.results
    )
    hops.append(("worker: run started → first step", at(steps[0]) - at(running)))
    for step, following in zip(steps, marks[1:], strict=False):
        name = step.step.value
        hops.append((f"step {name}", at(following) - at(step)))
        if name == "agent":
            previous = at(step)
            for event in events:
                if not isinstance(event, AgentTurn) or not (at(step) <= at(event) <= at(following)):
                    continue
                calls = event.calls
                turn = at(event) - previous
                previous = at(event)
                label = ", ".join(call.tool for call in calls)
                hops.append((f"  turn {event.turn}: {label}", turn))
                if calls and all(c.tool == "run" and c.args in check_names for c in calls):
                    check_time += turn
    reporter = sample["decision_wall"] - at(awaiting)
    hops.append(("reporter: awaiting decision → decision message", reporter))
    return hops, check_time, at(awaiting) - sample["wall0"]


def run(conn: redis.Redis, procs: Any, sandbox: str, runs: int) -> Result:
    """Call with the workers up on :data:`QUEUE`; ``runs`` measured after one warm-up
    (with 0, the warm-up is the sample)."""
    samples = []
    with slack_stack(conn, queue=QUEUE, reporter=True) as stack:
        for _ in range(runs + 1):  # the first warms the workers' mirror cache
            samples.append(one_run(stack, procs))
    warmup, measured = samples[0], samples[1:] or samples
    overheads, totals, checks = [], [], []
    tables: dict[str, list[float]] = {}
    for sample in measured:
        hops, check_time, to_awaiting = breakdown(sample)
        totals.append(sample["total"])
        checks.append(check_time)
        overheads.append(to_awaiting - check_time)
        for name, seconds in hops:
            tables.setdefault(name, []).append(seconds)
    calls_to_decision = [len(s["to_decision"]) for s in measured]
    calls_whole = [len(s["to_decision"]) + len(s["approval"]) for s in measured]
    by_method = Counter(c.method for c in measured[-1]["to_decision"])
    by_method_approval = Counter(c.method for c in measured[-1]["approval"])
    overhead = Figure(
        name="orchestration overhead (mention → awaiting decision, - model - checks)",
        unit="s",
        samples=overheads,
        how=f"{len(measured)} whole run(s), one at a time, after one warm-up; 2 `agents "
        f"worker` processes, replay model, {sandbox} sandbox, local forge, reporter with "
        "1 s coalescing; model time 0 (replay), check time from the checks' reports and "
        "the agent's turns that only ran the check command",
        target=Target("p50", 3.0, "≤ 3 s"),
        decimals=2,
    )
    total = Figure(
        name="… whole run, mention → decision message",
        unit="s",
        samples=totals,
        how=f"until the decision message reaches the thread; check time inside it: median "
        f"{statistics.median(checks):.2f} s; model time 0",
        decimals=2,
    )
    if overhead.met is False:
        steps = [(n, statistics.median(v)) for n, v in tables.items() if not n.startswith(" ")]
        worst = sorted(steps, key=lambda item: -item[1])[:3]
        overhead.note = "dominated by " + ", ".join(f"{n} ({v:.2f} s)" for n, v in worst)
    calls = Figure(
        name="Slack API calls per run (mention → approved)",
        unit="calls",
        samples=[float(n) for n in calls_whole],
        how="counted in the emulator's call log; coalesced `chat.update`s included; "
        f"{statistics.median(calls_to_decision):.0f} of them up to the decision message",
        target=Target("p50", 15, "≤ 15"),
        decimals=0,
    )
    if calls.met is False:
        updates = statistics.median(
            sum(c.method == "chat.update" for c in [*s["to_decision"], *s["approval"]])
            for s in measured
        )
        calls.note = (
            f"{updates:.0f} of them are `chat.update`: the reporter redraws the status message "
            f"about once a second while the run works ({statistics.median(totals):.1f} s here)"
        )
    lines = [
        "Per-hop breakdown (seconds, median over the measured runs; the event log's timestamps):",
        "",
        "| hop | median | max |",
        "|---|---|---|",
    ]
    for name, values in tables.items():
        label = name.replace("  turn", "&nbsp;&nbsp;↳ turn")
        lines.append(f"| {label} | {statistics.median(values):.3f} | {max(values):.3f} |")
    lines += [
        "",
        f"Warm-up run (first clone of the repository into the worker's mirror cache): "
        f"{warmup['total']:.2f} s whole.",
        "",
        "Slack API calls of the last measured run, by method: up to the decision message "
        + ", ".join(f"`{m}` {n}" for m, n in sorted(by_method.items()))
        + "; the approval "
        + (", ".join(f"`{m}` {n}" for m, n in sorted(by_method_approval.items())) or "none")
        + ".",
    ]
    return Result([overhead, total, calls], details="\n".join(lines))
