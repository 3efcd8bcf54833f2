"""Soak: 200 runs through the real bot and two `agents worker` processes while workers
are SIGKILLed at random, about once every ten runs.

Everything is real except Slack (the emulator, reached by the bot's real WebClient and
delivering signed HTTP to a real `agents bot` process), the model (the replay model, on
a transcript recorded at the start of the test) and the forge (the local one). Each
run is asked by a mention, goes through every step of the blueprint on a worker, and
is approved by clicking its Approve button, which the bot turns into an approve job.

The sandbox is the local backend, on a one-file repository whose check is a `grep`.
Measured on a 2-core machine with 2 workers, Docker finished a run of the sample
repository every 3.5 s or so (about 12 minutes for 200 runs) and a run of the one-file
repository every second (over 3 minutes before any kill), which does not fit CI's
time; the local backend finishes one every 0.2 s. The Docker paths are covered by the
fault injection tests and the secret scan; this test is about the queue, recovery,
the bot and memory under many runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Worker

from cli.record_blueprint import record
from fakes.anthropic import message, tool_use
from fakes.slack.server import SlackEmulator
from jobs.attempts import heartbeat_key
from jobs.forge.local import LocalForge
from process.exceptions import RunNotFound
from runs.record import FINAL_STATUSES, RunStatus
from runs.store import RunStore
from tests.blueprint.e2e import Workers, wait_for, worker_env
from tests.blueprint.helpers import commits
from tests.reliability.bot_process import (
    BotProcess,
    all_messages,
    approve_button_ts,
    bot_env,
    start_bot,
)
from tests.reliability.figures import record as record_figure

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RUNS = 200
KILL_SHARE = 0.10
SEED = int(os.environ.get("AGENTS_SOAK_SEED", "20261121"))
#: A process's resident memory after the soak may be at most this many times what it
#: was before (a bound on leaks, not a measure of speed).
MEMORY_FACTOR = 2.0
REPO = "acme/soak"
REQUEST = "add a line to the changelog"
CHANNEL = "C_GENERAL"
REQUESTER = "U_ALICE"
QUEUE = "soak"
#: Runs waiting in the queue that the test keeps topped up (so kills land mid-run
#: throughout, not on a drained queue).
BACKLOG = 8
#: A bound against a hang, far above what the soak takes; not a claim about speed.
HANG_GUARD = 1500.0


# -- processes and their memory ------------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, pgid) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rpartition(")")[2].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[2])


def process_tree(root: int) -> list[tuple[int, int]]:
    """``root`` and its descendants, as (pid, pgid)."""
    parents: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    own = _stat(root)
    if own is None:
        return []
    tree, todo = [(root, own[1])], [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            tree.append(child)
            todo.append(child[0])
    return tree


def rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else 0


def resident_mib(root: int, *, own_group_only: bool = False) -> float:
    """VmRSS of a process plus its children, in MiB. With ``own_group_only``, only the
    children in its process group: a worker and its RQ scheduler, not a work horse
    (forked per job, in a group of its own, gone when the job ends)."""
    tree = process_tree(root)
    if own_group_only:
        tree = [(pid, pgid) for pid, pgid in tree if pgid == root]
    return round(sum(rss_kib(pid) for pid, _ in tree) / 1024, 1)


def kill_tree(root: int) -> None:
    """SIGKILL a process and everything under it, as if the machine lost it."""
    for pid, _ in process_tree(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(root, signal.SIGKILL)


# -- the repository and its transcript --------------------------------------------------


def make_repo(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "README.md").write_text("# soak\n\nA one-file repository for the soak test.\n")
    (root / "CHANGES.md").write_text("# Changes\n")
    (root / ".agents.yml").write_text(
        "checks:\n  - name: changelog\n    run: grep -q 'one more line' CHANGES.md\n"
    )
    return root


def script_replies() -> list[dict[str, Any]]:
    """The builder edits the changelog and finishes; the reviewer approves."""
    return [
        message(
            tool_use(
                "toolu_1",
                "edit_file",
                {
                    "path": "CHANGES.md",
                    "old_text": "# Changes\n",
                    "new_text": "# Changes\n\n- one more line\n",
                },
            )
        ),
        message(
            tool_use(
                "toolu_2",
                "finish",
                {"summary": "Added a line to CHANGES.md.", "notes_for_reviewer": "One line."},
            )
        ),
        message(tool_use("toolu_r", "verdict", {"verdict": "approve", "notes": "- Fine."})),
    ]


def record_transcript(tmp: Path, repo_dir: Path) -> Path:
    """Record the soak's transcript against the fake Messages API, in the backend the
    workers replay it in; returns the directory to replay from."""
    script = tmp / "soak.script.json"
    script.write_text(json.dumps(script_replies()))
    out = tmp / "transcripts"
    run = record(
        repo_dir=repo_dir,
        repo=REPO,
        request=REQUEST,
        out=out / "soak.jsonl",
        script=script,
        backend="local",
        note="soak test",
    )
    assert run.status is RunStatus.AWAITING_DECISION, run.error
    return out


# -- the soak -----------------------------------------------------------------------


@dataclass
class Life:
    """One worker process: its resident memory (the process alone) when it had
    registered with RQ and at its end, and the jobs it finished."""

    name: str
    proc: subprocess.Popen[bytes]
    before: float | None = None
    after: float | None = None
    jobs: int = 0
    killed: bool = False


@dataclass
class Fleet:
    """Two worker slots; a killed worker is replaced at once by a new process.

    The next worker is always started ahead, as a standby that has imported the
    worker's code and waits (:meth:`Workers.standby`); it registers only when it takes
    a slot, so two workers at a time take jobs, and a slot is not left empty for the
    seconds those imports take after every kill."""

    workers: Workers
    env: dict[str, str]
    connection: redis.Redis
    slots: list[Life] = field(default_factory=list)
    lives: list[Life] = field(default_factory=list)
    next: tuple[str, subprocess.Popen[bytes]] | None = None

    def _ready(self) -> tuple[str, subprocess.Popen[bytes]]:
        name = f"soak{len(self.lives) + 1}"
        return name, self.workers.standby(self.env, name)

    def start(self, slot: int) -> None:
        name, proc = self.next or self._ready()
        life = Life(f"{name}-{os.getpid()}", self.workers.go(proc))
        self.lives.append(life)
        if slot < len(self.slots):
            self.slots[slot] = life
        else:
            self.slots.append(life)
        self.next = self._ready()

    def observe(self) -> None:
        """Take the "before" of workers that have just registered."""
        if all(life.before is not None for life in self.slots):
            return
        registered = {w.name for w in Worker.all(connection=self.connection)}
        for life in self.slots:
            if life.before is None and life.name in registered:
                life.before = rss_kib(life.proc.pid) / 1024

    def finish(self, life: Life) -> None:
        life.after = rss_kib(life.proc.pid) / 1024
        worker = Worker.find_by_key(f"rq:worker:{life.name}", connection=self.connection)
        if worker is not None:
            life.jobs = worker.successful_job_count + worker.failed_job_count

    def slot_of(self, pid: int) -> int | None:
        for slot, life in enumerate(self.slots):
            if pid in {p for p, _ in process_tree(life.proc.pid)}:
                return slot
        return None

    def kill(self, slot: int) -> None:
        life = self.slots[slot]
        self.finish(life)
        life.killed = True
        kill_tree(life.proc.pid)
        life.proc.wait()
        self.start(slot)

    def scheduler_mib(self) -> float:
        """The RQ scheduler: a fork of whichever worker holds its lock, in its group
        (0 while none holds it)."""
        total = 0.0
        for life in self.slots:
            for pid, pgid in process_tree(life.proc.pid):
                if pgid == life.proc.pid and pid != life.proc.pid:
                    total += rss_kib(pid) / 1024
        return total


def parse_counts(context_text: str) -> dict[str, int]:
    """``runs: approved 200, failed 1`` -> ``{"approved": 200, "failed": 1}``."""
    body = context_text.split("runs:", 1)[1].strip()
    if body == "none yet":
        return {}
    counts = {}
    for part in body.split(","):
        name, _, number = part.strip().rpartition(" ")
        counts[name.replace(" ", "_")] = int(number)
    return counts


def not_final(store: RunStore, asked: int) -> str:
    """The runs of the first ``asked`` that are not final, with where they are."""
    stuck = []
    for run_id in range(1, asked + 1):
        try:
            run = store.get(run_id)
        except RunNotFound:
            stuck.append(f"#{run_id} not created")
            continue
        if run.status not in FINAL_STATUSES:
            where = f" in {run.step.value}" if run.step else ""
            stuck.append(f"#{run_id} {run.status.value}{where} (attempt {run.attempts})")
    return ", ".join(stuck) or "none"


def test_soak_200_runs_with_random_worker_kills(
    real_redis_conn: redis.Redis, tmp_path: Path
) -> None:
    soak_redis = real_redis_conn
    began = time.monotonic()
    rng = random.Random(SEED)
    repo_dir = make_repo(tmp_path / "repo")
    transcripts = record_transcript(tmp_path, repo_dir)
    forge = LocalForge(tmp_path / "forge")
    bare = forge.create_repo(REPO, source=repo_dir)
    store = RunStore(soak_redis)
    sandboxes = tmp_path / "sandboxes"
    sandboxes.mkdir()

    workers = Workers(tmp_path)
    env = worker_env(
        tmp_path,
        QUEUE,
        AGENTS_SANDBOX_BACKEND="local",
        AGENTS_REPLAY_TRANSCRIPT=str(transcripts),
        AGENTS_APPROVE_ACTION="ready",
        # The local sandbox needs no engine; no Docker reaper either (it would judge
        # other tests' containers on this machine).
        DOCKER_HOST="unix:///nonexistent/docker.sock",
        TMPDIR=str(sandboxes),
    )
    fleet = Fleet(workers, env, soak_redis)
    bot: BotProcess | None = None
    emu = SlackEmulator().start()
    try:
        bot = start_bot(tmp_path, bot_env(emu, CHANNEL, REPO, QUEUE))
        emu.bot_url = bot.events_url
        for slot in range(2):
            fleet.start(slot)
        wait_for(
            lambda: len(Worker.all(connection=soak_redis)) >= 2, "both workers to register", 120
        )
        fleet.observe()
        bot_before = resident_mib(bot.proc.pid)
        scheduler_before = fleet.scheduler_mib()

        # Kills follow the starts of randomly chosen runs, none among the last few, so
        # that some run is always still to come to kill a worker in.
        kills_wanted = round(RUNS * KILL_SHARE)
        kill_at = set(rng.sample(range(1, RUNS - 2 * BACKLOG + 1), k=kills_wanted))
        due: dict[int, float] = {}  # run id -> when to kill the worker running it
        kills: list[dict[str, Any]] = []
        clicked: set[int] = set()
        mentioned = 0
        hung_after = time.monotonic() + HANG_GUARD
        while True:
            if time.monotonic() > hung_after:
                pytest.fail(
                    f"the soak hung: {HANG_GUARD:.0f} s on, {mentioned} of {RUNS} runs asked; "
                    f"not final: {not_final(store, mentioned)}"
                )
            queued = store.count_by_status(RunStatus.QUEUED)
            while mentioned < RUNS and queued < BACKLOG:
                _, delivery = emu.mention(REQUESTER, CHANNEL, REQUEST)
                assert delivery.status == 200, delivery
                mentioned += 1
                queued += 1
            fleet.observe()
            running = store.list_by_status(RunStatus.RUNNING, limit=500)
            now = time.monotonic()
            for run_id in sorted(kill_at - set(due)):
                # Due once the run has started (even if it already went past running).
                try:
                    started = store.get(run_id).status is not RunStatus.QUEUED
                except RunNotFound:  # the bot has not made it yet
                    started = False
                if started:
                    due[run_id] = now + rng.uniform(0.0, 0.4)
            for run_id, when in list(due.items()):
                if when > now or due[run_id] < 0:
                    continue
                # Kill the worker running this run; if it is no longer running, the
                # worker of whichever run is running now (one kill per run at most).
                candidates = [store.get(run_id), *running]
                for candidate in candidates:
                    if candidate.status is not RunStatus.RUNNING or candidate.attempts > 1:
                        continue
                    beat = soak_redis.get(heartbeat_key(store, candidate.id, candidate.attempts))
                    if beat is None:
                        continue
                    horse = int(json.loads(beat)["owner"].rpartition(":")[2])
                    slot = fleet.slot_of(horse)
                    if slot is None:
                        continue
                    kills.append(
                        {
                            "run": candidate.id,
                            "step": candidate.step.value if candidate.step else "starting",
                        }
                    )
                    fleet.kill(slot)
                    due[run_id] = -1.0
                    break
            for run in store.list_by_status(RunStatus.AWAITING_DECISION, limit=500):
                if run.id in clicked or run.thread_ts is None:
                    continue
                ts = approve_button_ts(emu, CHANNEL, run.thread_ts)
                if ts is not None:
                    delivery = emu.click(REQUESTER, CHANNEL, ts, "agents_approve")
                    assert delivery.status == 200, delivery
                    clicked.add(run.id)
            finished = sum(store.count_by_status(status) for status in FINAL_STATUSES)
            if mentioned == RUNS and finished == RUNS:
                break
            assert len(kills) == kills_wanted or finished < mentioned, "no run left to kill in"
            time.sleep(0.05)

        run_ids = list(range(1, RUNS + 1))
        runs = [store.get(run_id) for run_id in run_ids]
        states = Counter(run.status.value for run in runs)
        # Every run must have been approved before waiting for the threads to say so.
        assert states == {"approved": RUNS}, [(r.id, r.status, r.error) for r in runs if r.error]

        # The thread of every run says so: the reporter caught up with all of them.
        def unreported() -> list[int]:
            shown = {
                m.get("thread_ts") or m.get("ts")
                for m in all_messages(emu)
                if "approved by" in m.get("text", "")
            }
            return [run.id for run in runs if run.thread_ts not in shown]

        # A hang guard, not a speed claim: the reporter redraws each thread at most
        # about once a second, and 200 threads share it.
        wait_for(
            lambda: not unreported(),
            "every thread to show its approval (the reporter hung?)",
            HANG_GUARD,
            detail=lambda: f"runs whose thread never said so: {unreported()[:20]}",
        )

        # `/agents status`, over signed HTTP, accounts for every run.
        emu.slash(REQUESTER, CHANNEL, "/agents", "status")
        answer = emu.wait_for(
            lambda: next(
                (e for e in reversed(emu.ephemerals(REQUESTER)) if "runs:" in json.dumps(e)),
                None,
            ),
            30,
            "the /agents status answer",
        )
        context = next(
            element["text"]
            for block in answer["blocks"]
            if block["type"] == "context"
            for element in block["elements"]
            if "runs:" in element.get("text", "")
        )
        shown = parse_counts(context)

        # One PR per run, with one commit: no duplicates after the kills.
        prs = Counter(int(pr.branch.split("/")[1].split("-")[0]) for pr in forge.list_prs(REPO))
        duplicates = sum(n - 1 for n in prs.values() if n > 1)
        commit_counts = Counter(len(commits(bare, run.artifacts.branch or "")) for run in runs)

        # Memory after: every process idle again.
        def idle() -> bool:
            fleet.observe()
            return all(
                life.before is not None
                and all(pgid == life.proc.pid for _, pgid in process_tree(life.proc.pid))
                for life in fleet.slots
            )

        wait_for(idle, "the workers to be idle", 60)
        bot_after = resident_mib(bot.proc.pid)
        scheduler_after = fleet.scheduler_mib()
        for life in fleet.slots:
            fleet.finish(life)
        # What `/agents status` says about workers (RQ forgets a killed one only when
        # its registration expires).
        workers_shown = re.search(r"(\d+) worker\(s\) alive", json.dumps(answer["blocks"]))
        leftover_dirs = [p.name for p in sandboxes.iterdir() if p.name.startswith("agents-local")]
        resumed = sum(1 for run in runs if run.attempts > 1)
        elapsed = time.monotonic() - began
    finally:
        if bot is not None:
            bot.stop()
        workers.stop()
        emu.stop()

    # -- figures -------------------------------------------------------------------
    lives = [life for life in fleet.lives if life.before is not None and life.after is not None]
    busiest = max(lives, key=lambda life: life.jobs)
    worst = max(lives, key=lambda life: (life.after or 0) / (life.before or 1))
    steps = Counter(k["step"] for k in kills)
    shown_workers = workers_shown.group(1) if workers_shown else "?"

    def ratio(before: float, after: float) -> float:
        return round(after / before, 2)

    def mib(value: float | None) -> float:
        return round(value or 0.0, 1)

    record_figure(
        "soak",
        "Soak: 200 runs, 2 workers, random SIGKILLs",
        ["measure", "value"],
        [
            ["runs asked (mentions over signed HTTP to `agents bot`)", RUNS],
            ["worker processes at a time / started in all", f"2 / {len(fleet.lives)}"],
            ["workers SIGKILLed (with their scheduler and work horse) mid-run", len(kills)],
            [
                "... by the step of the run they held",
                ", ".join(f"{s} {n}" for s, n in sorted(steps.items())),
            ],
            ["runs resumed after their worker died", resumed],
            ["final states", ", ".join(f"{s} {n}" for s, n in sorted(states.items()))],
            ["`/agents status` shows", context.replace("runs: ", "")],
            ["`/agents status` matches every run record", "yes" if shown == dict(states) else "NO"],
            ["workers `/agents status` counts as alive at the end", shown_workers],
            [
                "PRs per run",
                ", ".join(f"{n} PR: {c} runs" for n, c in sorted(Counter(prs.values()).items())),
            ],
            ["duplicate PRs", duplicates],
            [
                "commits per PR branch",
                ", ".join(f"{n}: {c} runs" for n, c in sorted(commit_counts.items())),
            ],
            ["Docker containers left", "none created (local sandbox)"],
            ["local sandbox directories left by killed work horses", len(leftover_dirs)],
            ["wall time of the test", f"{elapsed:.0f} s"],
        ],
        notes=(
            f"Seed {SEED}. A kill is due at a random moment (0-0.4 s) after one of "
            f"{kills_wanted} runs, chosen at random among the first {RUNS - 2 * BACKLOG}, "
            "starts. It SIGKILLs the worker holding that run (or, if it is past running, "
            "another running run not yet killed), with its RQ scheduler and work horse, and "
            "a new worker takes the slot at once. Every run is approved through its Approve "
            "button. The "
            "sandbox is the local backend on a one-file repository (the test's docstring "
            "says why): the Docker containers a dead worker leaves are counted by the fault "
            "injection tests. The local backend has no reaper, so a killed work horse leaves "
            "its temporary directory behind; only a development setup uses that backend. "
            "RQ keeps a killed worker's registration until it expires, so the status's "
            "worker count is high for a few minutes after a kill."
        ),
        order=40,
    )
    finals = list(fleet.slots)
    record_figure(
        "soak-memory",
        "Soak: resident memory before and after (MiB)",
        ["process", "before", "after", "after / before"],
        [
            [
                "`agents bot` (HTTP server and reporter)",
                mib(bot_before),
                mib(bot_after),
                ratio(bot_before, bot_after),
            ],
            *[
                [
                    f"worker {life.name.rpartition('-')[0]} (alive at the end, {life.jobs} jobs)",
                    mib(life.before),
                    mib(life.after),
                    ratio(life.before or 1, life.after or 0),
                ]
                for life in finals
            ],
            [
                f"worker {busiest.name.rpartition('-')[0]} (most jobs: {busiest.jobs}, "
                + ("killed)" if busiest.killed else "alive at the end)"),
                mib(busiest.before),
                mib(busiest.after),
                ratio(busiest.before or 1, busiest.after or 0),
            ],
            [
                f"largest growth of the {len(lives)} worker processes "
                f"({worst.name.rpartition('-')[0]}, {worst.jobs} jobs)",
                mib(worst.before),
                mib(worst.after),
                ratio(worst.before or 1, worst.after or 0),
            ],
            [
                "RQ scheduler (a fork of the worker holding its lock)",
                mib(scheduler_before),
                mib(scheduler_after) if scheduler_after else "not running",
                ratio(scheduler_before, scheduler_after)
                if scheduler_before and scheduler_after
                else "-",
            ],
        ],
        notes=(
            "VmRSS from `/proc/<pid>/status`. The bot is one process. A worker is counted "
            "alone: its work horses are forked per job and exit with it, and its RQ "
            "scheduler has its own row. A worker's before is taken once it has registered "
            "with RQ, its after when it was killed or, for the two alive at the end, idle "
            "after the 200 runs, their approvals and the status command. The test fails if "
            f"any after is more than {MEMORY_FACTOR:g} times its before. The scheduler's "
            "lock outlives a killed holder for a while, and RQ workers try for it only when "
            "they start and at their maintenance pass (every 10 minutes), so the scheduler "
            "may not be running at the end of the soak."
        ),
        order=41,
    )

    # -- assertions ----------------------------------------------------------------
    assert mentioned == RUNS
    assert len(kills) == kills_wanted, kills
    assert all(run.status in FINAL_STATUSES for run in runs), states
    assert states == {"approved": RUNS}, [(r.id, r.status, r.error) for r in runs if r.error]
    assert shown == dict(states), context
    assert "0 waiting" in json.dumps(answer["blocks"])
    assert sorted(prs) == run_ids
    assert duplicates == 0
    assert commit_counts == {1: RUNS}
    assert len(leftover_dirs) <= len(kills)
    assert bot_after <= MEMORY_FACTOR * bot_before, (bot_before, bot_after)
    for life in lives:
        assert (life.after or 0) <= MEMORY_FACTOR * (life.before or 0), life
    if scheduler_before and scheduler_after:
        assert scheduler_after <= MEMORY_FACTOR * scheduler_before
