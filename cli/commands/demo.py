"""``agents demo``: the whole product on one machine, with no Slack, GitHub or model key.

It starts the Slack emulator (with its web page), the fake GitHub (with its pull-request
pages), the bot in HTTP mode, the thread reporter and a worker, all in this process, on
embedded defaults: an in-memory Redis (or REDIS_URL), the Docker sandbox when an engine
answers (else the local one, which says loudly that it does not isolate), the fake
GitHub serving a copy of the sample repository (the worker drives it through PyGithub
and git over HTTP, as it would drive GitHub), and recorded transcripts instead of the
model (unless ANTHROPIC_API_KEY is set). ``--headless`` plays mention -> PR -> approve
and prints the thread.

The fake GitHub sends its webhooks, signed, to the bot's ``/github/events``: the thread's
pull-request link opens the PR's page, and a comment ``@agents ...`` there reworks the
run, as on GitHub.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from rq import SimpleWorker
from rq.exceptions import StopRequested

from cli.local_redis import open_redis
from runs.record import RunStatus

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.services import Services
    from fakes.slack.server import SlackEmulator
    from process.http import HttpServer

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample-repo"
TRANSCRIPTS = ROOT / "examples" / "transcripts" / "blueprint"
#: The second iteration, asked for by a comment on the pull request's page.
GITHUB_REWORK = ROOT / "examples" / "transcripts" / "github" / "rework.jsonl"
DEMO_REQUEST = "make the retry limit configurable"
#: What the recorded second iteration was asked, on GitHub, by :data:`COMMENTER`.
DEMO_COMMENT = "@agents Please also add a CHANGELOG.md entry for this change."
COMMENTER = "octocat"
#: The name the transcripts were recorded with; the replay checks it.
DEMO_REPO = "acme/retrying"
REQUESTER = "U_ALICE"
CHANNEL = "C_GENERAL"
QUEUE = "agents-demo"
STEP_LIMIT_SECONDS = 600
#: How long the headless demo waits for the merge's webhook after Approve.
MERGE_REPORT_SECONDS = 60


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole flow on this machine: Slack emulator, bot, worker, fake GitHub",
        description="Run the product end to end with no Slack workspace, GitHub or model "
        "key. Opens a local Slack emulator to type into, or with --headless plays "
        "mention -> pull request -> approve and prints the thread.",
    )
    parser.add_argument(
        "--headless", action="store_true", help="play the scripted scenario and print it"
    )
    parser.add_argument("--port", type=int, default=0, help="the emulator's port (default: any)")
    parser.add_argument(
        "--sandbox",
        choices=["auto", "docker", "local"],
        default="auto",
        help="auto: Docker when an engine and the sandbox image are there",
    )
    parser.set_defaults(func=handle)


def docker_ready(image: str) -> bool:
    try:
        import docker

        client = docker.from_env(timeout=5)
    except Exception:  # any failure means "no usable engine"
        return False
    try:
        client.images.get(image)
        return True
    except Exception:  # a missing image or a broken engine alike
        return False
    finally:
        client.close()


def choose_sandbox(wanted: str, image: str) -> str:
    if wanted != "auto":
        return wanted
    return "docker" if docker_ready(image) else "local"


def transcript_for(sandbox: str) -> Path:
    """Replays need the tool outputs they were recorded with, so each sandbox kind has
    its own recording of the same conversation."""
    specific = TRANSCRIPTS / f"clean.{sandbox}.jsonl"
    return specific if specific.exists() else TRANSCRIPTS / "clean.jsonl"


def transcripts(work: Path, sandbox: str) -> Path:
    """A directory of the demo's recordings, one per iteration: the first, and the
    rework a comment on the pull request asks for (the replay picks by iteration)."""
    chosen = work / "transcripts"
    chosen.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(transcript_for(sandbox), chosen / "1-clean.jsonl")
    if GITHUB_REWORK.is_file():
        shutil.copyfile(GITHUB_REWORK, chosen / "2-github-rework.jsonl")
    return chosen


def github_environment(github_url: str, token: str) -> dict[str, str]:
    """The worker's forge: the fake GitHub, through PyGithub and git over HTTP."""
    return {"AGENTS_FORGE": "github", "GITHUB_TOKEN": token, "AGENTS_GITHUB_API_URL": github_url}


def worker_environment(work: Path, sandbox: str) -> dict[str, str]:
    """The worker's settings, but for its forge (:func:`github_environment`)."""
    env = {
        "AGENTS_QUEUE": QUEUE,
        "AGENTS_SANDBOX_BACKEND": sandbox,
        "AGENTS_CACHE_DIR": str(work / "cache"),
        "AGENTS_APPROVE_ACTION": "merge",
        "AGENTS_CI_TIMEOUT_SECONDS": "0",
    }
    if os.environ.get("ANTHROPIC_API_KEY"):
        env["AGENTS_MODEL_BACKEND"] = "anthropic"
    else:
        env["AGENTS_MODEL_BACKEND"] = "replay"
        env["AGENTS_REPLAY_TRANSCRIPT"] = str(transcripts(work, sandbox))
    return env


def render_thread(messages: list[dict[str, Any]], names: dict[str, str]) -> str:
    """A thread as plain text: who said what, with buttons and reactions."""
    out = []
    for message in messages:
        who = names.get(message.get("user", ""), message.get("user") or "agents")
        if message.get("bot_id"):
            who = "agents"
        lines = []
        for block in message.get("blocks") or []:
            if block.get("type") in ("section", "header") and block.get("text"):
                lines.append(block["text"]["text"])
            elif block.get("type") == "context":
                lines.extend(e.get("text", "") for e in block.get("elements", []))
            elif block.get("type") == "actions":
                labels = [e["text"]["text"] for e in block.get("elements", []) if "text" in e]
                lines.append("[" + "] [".join(labels) + "]")
        text = "\n".join(lines) or message.get("text", "")
        reactions = " ".join(f":{r['name']}:" for r in message.get("reactions", []))
        body = text.replace("\n", "\n    ")
        out.append(f"{who}: {body}" + (f"\n    {reactions}" if reactions else ""))
    return "\n".join(out)


@contextmanager
def running(target: Callable[[threading.Event], None]) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=target, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def work_until(
    worker: SimpleWorker, done: Callable[[], bool], what: str, limit: float = STEP_LIMIT_SECONDS
) -> None:
    """Run queued jobs in this (the main) thread until ``done()``; RQ needs the main
    thread for its signal handlers."""
    deadline = time.monotonic() + limit
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        worker.work(burst=True, logging_level="WARNING")
        time.sleep(0.2)


@dataclass
class ServedBot:
    services: Services
    client: WebClient
    server: HttpServer


def serve_bot(
    emu: SlackEmulator,
    conn: redis.Redis,
    *,
    channel_repos: dict[str, str],
    queue: str,
    github_secret: str | None = None,
) -> ServedBot:
    """The bolt app over HTTP on a free loopback port, wired to ``emu`` both ways: its
    Web API calls go to the emulator and the emulator delivers events to it. With
    ``github_secret``, it takes GitHub's webhooks too (``/github/events``)."""
    from bot.app import create_app
    from bot.github_webhooks import GitHubWebhooks, github_endpoint
    from bot.http import asgi_app
    from bot.services import Services
    from bot.slack_client import web_client
    from process import settings
    from process.http import HttpServer

    bot_settings = settings.load(
        settings.BotSettings,
        slack_bot_token=emu.bot_token,
        slack_signing_secret=emu.signing_secret,
        slack_api_url=emu.api_url,
        channel_repos=channel_repos,
        queue=queue,
    )
    client = web_client(emu.bot_token, emu.api_url)
    services = Services.from_settings(bot_settings, conn, client)
    github = None
    if github_secret is not None:
        receiver = GitHubWebhooks(
            conn,
            services.store,
            secret=github_secret,
            queue=queue,
            allowed_repos=bot_settings.allowed_repos,
        )
        github = github_endpoint(receiver)
    app = asgi_app(create_app(services, client), emu.signing_secret, lambda: None, github=github)
    server = HttpServer(app, "127.0.0.1", 0)
    emu.bot_url = f"http://127.0.0.1:{server.port}/slack/events"
    return ServedBot(services, client, server)


def handle(args: argparse.Namespace) -> int:
    if not SAMPLE.is_dir():
        print(
            f"agents demo: the sample repository is missing ({SAMPLE}); run it from a "
            "checkout of the project",
            file=sys.stderr,
        )
        return 1
    from cli.commands.run import publish_directory
    from fakes.github.server import FakeGitHub
    from fakes.slack.server import SlackEmulator
    from jobs.forge.local import LocalForge
    from process import settings

    sandbox = choose_sandbox(
        args.sandbox, os.environ.get("AGENTS_SANDBOX_IMAGE", "agents-sandbox:latest")
    )
    if sandbox == "local" and args.sandbox == "auto" and os.environ.get("ANTHROPIC_API_KEY"):
        print(
            "agents demo: ANTHROPIC_API_KEY is set but no Docker engine with the sandbox image "
            "answers, and a live model must not run commands unisolated on this machine. "
            "Start Docker and run `agents sandbox build`, or pass --sandbox local knowingly.",
            file=sys.stderr,
        )
        return 2
    work = Path(tempfile.mkdtemp(prefix="agents-demo-"))
    forge_dir = work / "forge"
    repo = publish_directory(SAMPLE, forge_dir, DEMO_REPO)
    token, secret = secrets.token_hex(20), secrets.token_hex(20)
    github = FakeGitHub(token).start()
    github.add_repo(repo, bare=LocalForge(forge_dir).repo_path(repo))
    github.set_permission(repo, COMMENTER, "write")
    os.environ.update(worker_environment(work, sandbox))
    os.environ.update(github_environment(github.base_url, token))
    try:
        settings.load(settings.WorkerSettings)
    except Exception:
        github.close()
        shutil.rmtree(work, ignore_errors=True)
        raise
    try:
        conn, where = open_redis()
    except BaseException:
        github.close()  # its server thread would keep the process alive
        shutil.rmtree(work, ignore_errors=True)
        raise
    emu = SlackEmulator(port=args.port).start()
    try:
        bot = serve_bot(emu, conn, channel_repos={CHANNEL: repo}, queue=QUEUE, github_secret=secret)
        services, server = bot.services, bot.server
        github.deliver_to(f"http://127.0.0.1:{server.port}/github/events", secret)
        reporter = services.reporter
        reporter.ensure_group()
        worker = SimpleWorker([services.queue.queue], connection=conn)
        model = (
            "the real model"
            if os.environ.get("ANTHROPIC_API_KEY")
            else (
                f"REPLAY of a recorded transcript ({os.environ['AGENTS_REPLAY_TRANSCRIPT']}), "
                "not a live model"
            )
        )
        print(
            f"store: {where}\nsandbox: {sandbox}\nforge: the fake GitHub at "
            f"{github.base_url}, serving {repo}\nmodel: {model}"
        )
        with (
            running(lambda stop: server.serve_forever()),
            running(reporter.run_forever),
        ):
            try:
                if args.headless:
                    return headless(emu, services, worker, repo)
                print(
                    f"\nOpen {emu.url}/?user={REQUESTER} and type:\n"
                    f"  @agents {DEMO_REQUEST}\n"
                    "Then open the pull request's link in the thread, and comment there:\n"
                    f"  {DEMO_COMMENT}\n(Ctrl-C to stop)"
                )
                work_until(worker, lambda: False, "Ctrl-C", limit=float("inf"))
            finally:
                server.stop()
    except (KeyboardInterrupt, StopRequested):
        # Ctrl-C or SIGTERM: RQ's handlers (installed by the worker) raise StopRequested.
        print("\nstopped")
        return 0
    finally:
        emu.stop()
        github.close()
        conn.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def headless(emu: Any, services: Any, worker: SimpleWorker, repo: str) -> int:
    store = services.store
    started = time.monotonic()
    ts, _ = emu.mention(REQUESTER, CHANNEL, DEMO_REQUEST)
    run = emu.wait_for(lambda: store.find_by_thread(CHANNEL, ts), 30, "the run to be created")
    print(f"\n{REQUESTER} asked in #general: @agents {DEMO_REQUEST}  (run {run.label})")
    work_until(
        worker,
        lambda: (
            store.get(run.id).status is not RunStatus.QUEUED
            and store.get(run.id).status is not RunStatus.RUNNING
        ),
        "the run to finish its steps",
    )
    current = store.get(run.id)
    if current.status is RunStatus.AWAITING_DECISION:
        decision = emu.wait_for_message(CHANNEL, "ready for review", timeout=60)
        emu.click(REQUESTER, CHANNEL, decision["ts"], "agents_approve")
        work_until(
            worker, lambda: store.get(run.id).status.is_final, "the approval to be carried out"
        )
        emu.wait_for_message(CHANNEL, "approved by", timeout=60)
        # Approve merged the PR; GitHub's pull_request webhook then ends the run merged.
        try:
            work_until(
                worker,
                lambda: store.get(run.id).status is not RunStatus.APPROVED,
                "GitHub's webhook to report the merge",
                limit=MERGE_REPORT_SECONDS,
            )
        except TimeoutError as exc:
            print(f"agents demo: {exc}", file=sys.stderr)
    final = store.get(run.id)
    # The status message is redrawn at most about once a second; wait for the last one.
    word = final.status.value.replace("_", " ")
    emu.wait_for(
        lambda: word in str((emu.message(CHANNEL, final.status_ts or "") or {}).get("blocks")),
        30,
        "the status message's last update",
    )
    names = {"U_ALICE": "alice", "U_BOB": "bob"}
    print("\n--- the thread, as Slack shows it ---")
    print(render_thread(emu.thread(CHANNEL, ts), names))
    print(f"--- {final.label} is {final.status.value} after {time.monotonic() - started:.1f}s ---")
    if final.status is RunStatus.MERGED:
        print(
            f"The pull request {final.artifacts.pr_url} was merged into {repo} on the fake GitHub."
        )
        return 0
    print(f"The demo did not reach approval: {final.error or final.status.value}", file=sys.stderr)
    return 1
