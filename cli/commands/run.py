"""``agents run``: one request end to end from the terminal, without Slack.

It runs the blueprint in this process (no worker needed) and prints the run as its
Slack thread would show it, at each step and at the end. It exits 0 only when a pull
request is open and the run awaits a decision.

The store is the Redis at ``REDIS_URL`` when that is set, otherwise an in-memory one.
``--repo`` is ``owner/name`` on the forge, or a local directory: its files are
published as a repository of the local forge first.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import re
import signal
import stat
import sys
import time
from pathlib import Path
from typing import Any

import git

from bot.clean import clean_text
from bot.requests import MAX_REQUEST_CHARS
from cli.local_redis import open_redis
from process import settings
from process.exceptions import ForgeError, InvalidTransition
from process.repo_names import repo_problem
from runs.projection import project, render_text
from runs.record import Run, RunStatus, Step
from runs.store import RunStore

EXIT_NO_PR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
PREFIX = "agents-cli"

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run one request end to end from the terminal (no Slack)",
        description="Run one request end to end in this process and print the run as the "
        "thread shows it. Exits 0 only when a pull request is open.",
    )
    parser.add_argument("request", help="what to change, in plain words")
    parser.add_argument(
        "--repo",
        required=True,
        help="owner/name on the forge, or a local directory (published to the local forge)",
    )
    parser.add_argument(
        "--model",
        metavar="anthropic|replay:PATH",
        help="the real model, or a recorded transcript (file or directory) to play back "
        "(default: AGENTS_MODEL_BACKEND and AGENTS_REPLAY_TRANSCRIPT)",
    )
    parser.add_argument(
        "--sandbox",
        choices=["docker", "local", "auto"],
        help="sandbox backend (default: AGENTS_SANDBOX_BACKEND); local does NOT isolate",
    )
    parser.add_argument(
        "--forge", choices=["local", "github"], help="where the PR goes (default: AGENTS_FORGE)"
    )
    parser.add_argument(
        "--forge-dir", type=Path, help="the local forge's directory (AGENTS_LOCAL_FORGE_DIR)"
    )
    parser.add_argument(
        "--name",
        metavar="OWNER/NAME",
        help="with a local directory: the repository name to publish it as "
        "(default local/<directory>-<digest of its files>; an existing one is reused)",
    )
    parser.add_argument("--requester", default="cli", help="who asks (a Slack user id)")
    parser.set_defaults(func=handle)


def overrides(args: argparse.Namespace) -> dict[str, Any] | None:
    """Settings the flags choose; None if ``--model`` is malformed."""
    chosen: dict[str, Any] = {}
    if args.model:
        if args.model == "anthropic":
            chosen["model_backend"] = "anthropic"
        elif args.model.startswith("replay:") and len(args.model) > len("replay:"):
            chosen["model_backend"] = "replay"
            chosen["replay_transcript"] = Path(args.model.removeprefix("replay:"))
        else:
            return None
    if args.sandbox:
        chosen["sandbox_backend"] = args.sandbox
    if args.forge:
        chosen["forge"] = args.forge
    if args.forge_dir:
        chosen["local_forge_dir"] = args.forge_dir
    return chosen


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:40] or "repo"


def tree_digest(directory: Path) -> str:
    """A short digest of a directory's files (not ``.git``): a changed tree is a new repo.

    Names are taken as the bytes they are (any name a file system allows), and a link
    by its target, never read through (it may point anywhere, or at a FIFO).
    """
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if ".git" in relative.parts:
            continue
        name = os.fsencode(relative)
        if path.is_symlink():
            digest.update(b"link\0" + name + b"\0" + os.fsencode(os.readlink(path)) + b"\0")
        elif stat.S_ISREG(path.lstat().st_mode):
            digest.update(name + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:8]


def publish_directory(directory: Path, forge_dir: Path, name: str | None = None) -> str:
    """The directory as a repository of the local forge (created once).

    By default it is named ``local/<directory>-<digest of its files>``, so a changed
    directory becomes a new repository.
    """
    from jobs.forge.local import LocalForge

    name = name or f"local/{_slug(directory.resolve().name)}-{tree_digest(directory)}"
    LocalForge(forge_dir).create_repo(name, source=directory)
    return name


def highest_run_branch(bare: Path) -> int:
    """The highest run id among ``agents/<id>-...`` branches of a bare repository."""
    if not (bare / "HEAD").is_file():
        return 0
    with git.Repo(bare) as repo:
        refs = str(repo.git.for_each_ref("--format=%(refname:short)", "refs/heads/agents/"))
    ids = [int(m.group(1)) for m in re.finditer(r"^agents/(\d+)-", refs, flags=re.MULTILINE)]
    return max(ids, default=0)


def seed_ids(store: RunStore, at_least: int) -> None:
    """Run ids name branches, so a new run's id must be above every earlier run's."""
    key = f"{store.prefix}:runs:seq"
    current = int(store.redis.get(key) or 0)
    if current < at_least:
        store.redis.set(key, at_least)


def show(store: RunStore, run_id: int) -> str:
    run = store.get(run_id)
    return render_text(project(run, store.tail_events(run_id, 50)))


def handle(args: argparse.Namespace) -> int:
    chosen = overrides(args)
    if chosen is None:
        print("agents run: --model must be `anthropic` or `replay:PATH`", file=sys.stderr)
        return EXIT_USAGE
    request = clean_text(args.request).strip()
    if not request:
        print(
            "agents run: the request is empty; say what to change, e.g. "
            'agents run "make the retry limit configurable" --repo acme/api',
            file=sys.stderr,
        )
        return EXIT_USAGE
    if len(request) > MAX_REQUEST_CHARS:
        print(
            f"agents run: the request is {len(request):,} characters; at most "
            f"{MAX_REQUEST_CHARS:,}. Put the details in a file in the repository and point "
            "to it",
            file=sys.stderr,
        )
        return EXIT_USAGE
    worker = settings.load(settings.WorkerSettings, **chosen)
    from jobs.blueprint.runner import run_blueprint
    from jobs.blueprint.wiring import open_deps

    repo = args.repo
    directory = Path(repo)
    if directory.is_dir():
        if worker.forge != "local":
            print("agents run: a local directory needs --forge local", file=sys.stderr)
            return EXIT_USAGE
        repo = publish_directory(directory, worker.local_forge_dir, args.name)
        print(f"published {directory} to the local forge as {repo}")
    elif (problem := repo_problem(repo)) is not None:
        print(
            f"agents run: --repo {repo!r} is neither a directory nor owner/name ({problem}; "
            "e.g. --repo acme/api or --repo ./my-checkout)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    conn, _ = open_redis()
    store = RunStore(conn, retention_seconds=worker.run_retention_seconds, prefix=PREFIX)
    if worker.forge == "local":
        owner, name = repo.split("/", 1)
        seed_ids(store, highest_run_branch(worker.local_forge_dir / owner / f"{name}.git"))
    elif not os.environ.get("REDIS_URL"):
        seed_ids(store, int(time.time()))  # no shared store: keep branch names unique
    run = store.create(requester=args.requester, repo=repo, request=request, by="cli")

    def on_step(current: Run, step: Step) -> None:
        print(show(store, current.id), flush=True)

    # SIGTERM ends the run as Ctrl-C does: cancelled, its sandbox removed.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with open_deps(worker, store, on_step=on_step) as deps:
            final = run_blueprint(deps, run.id, by="cli")
            pr_open = False
            if final.artifacts.pr_number is not None:
                try:
                    pr = deps.forge.get_pr(final.repo, final.artifacts.pr_number)
                    pr_open = pr.state == "open"
                except ForgeError as err:
                    print(f"agents run: could not read the PR: {err}", file=sys.stderr)
    except KeyboardInterrupt:
        end(store, run.id, RunStatus.CANCELLED, "interrupted at the terminal (Ctrl-C)")
        print(show(store, run.id))
        print(f"agents run: interrupted; run #{run.id} cancelled", file=sys.stderr)
        conn.close()
        return EXIT_INTERRUPTED
    except Exception as exc:
        log.debug("agents run: run #%d stopped", run.id, exc_info=True)
        why = one_line(exc)
        end(store, run.id, RunStatus.FAILED, f"agents run stopped: {why}")
        print(show(store, run.id))
        print(f"agents run: run #{run.id} failed: {why}", file=sys.stderr)
        conn.close()
        return EXIT_NO_PR
    print(show(store, run.id))
    conn.close()
    if pr_open and final.status is RunStatus.AWAITING_DECISION:
        return 0
    return EXIT_NO_PR


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, at most 300 characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 300 else text[:299] + "…"


def end(store: RunStore, run_id: int, status: RunStatus, reason: str) -> None:
    """Put a run this command created in a final state with its reason, unless it is in
    one already (the blueprint ended it, or a decision did)."""
    with contextlib.suppress(InvalidTransition):
        store.transition(run_id, status, by="cli", reason=reason)
