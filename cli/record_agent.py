"""Record a transcript: run the agent on a directory and write every model call down.

Against the real API (needs ``ANTHROPIC_API_KEY``; honours ``ANTHROPIC_BASE_URL``)::

    python -m cli.record_agent --repo-dir examples/sample-repo --repo acme/retrying \\
        --request "make the retry limit configurable" --check "python -m pytest -q" \\
        --out /tmp/retry.jsonl

Offline, with ``--script replies.json``: the same run through the real SDK, against the
fake Messages API answering with the scripted replies. That is how the sample
transcript in ``examples/transcripts/`` is made; see ``docs/transcripts.md``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import get_args

from fakes.anthropic import FakeMessagesAPI, load_script
from jobs.agent.config import AgentConfig
from jobs.agent.loop import run_agent
from jobs.agent.model import AnthropicModel, anthropic_client
from jobs.agent.prompt import Task
from jobs.agent.recorders import MemoryRecorder
from jobs.agent.replay import RecordingModel
from process.exceptions import AgentError
from process.settings import Role
from sandboxes.cache import RepoCache, WorkspaceArchive
from sandboxes.factory import Backend, create_sandbox

FAKE_KEY = "sk-ant-fake-messages-api"
_GIT = ["git", "-c", "user.name=agents", "-c", "user.email=agents@localhost"]


def snapshot(directory: Path, scratch: Path) -> WorkspaceArchive:
    """``directory`` as a sandbox workspace: committed once, archived by the repo cache.

    It goes through the same :class:`~sandboxes.cache.RepoCache` path as a real run,
    so the sandbox gets a git checkout to diff against. Nothing touches the network.
    """
    origin = scratch / "origin"
    # Links are copied as links (never read through: one may point anywhere on this
    # machine), and nothing but files, directories and links is copied (reading a FIFO
    # would block).
    shutil.copytree(directory, origin, symlinks=True, ignore=_not_copied)
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run([*_GIT, *args], cwd=origin, env=env, check=True, capture_output=True)
    cache = RepoCache(scratch / "cache")
    cache.mirror(str(origin))
    return cache.workspace(str(origin), "HEAD")


def _not_copied(directory: str, names: list[str]) -> set[str]:
    """``.git``, ``__pycache__`` and whatever is not a regular file, directory or link."""
    skipped = {".git", "__pycache__"}
    for name in names:
        mode = os.lstat(os.path.join(directory, name)).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
            skipped.add(name)
    return skipped


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cli.record_agent",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repo-dir", type=Path, required=True, help="directory to work on")
    parser.add_argument("--repo", required=True, help="repository name the prompt states")
    parser.add_argument("--request", required=True, help="what to ask for")
    parser.add_argument("--check", help="check command the prompt states")
    parser.add_argument("--out", type=Path, required=True, help="transcript file to write")
    parser.add_argument("--script", type=Path, help="scripted replies: use the fake API")
    parser.add_argument("--role", default="builder", choices=get_args(Role))
    parser.add_argument(
        "--backend",
        default="auto",
        choices=get_args(Backend),
        help="sandbox backend (local does not isolate; the sample was recorded with it)",
    )
    parser.add_argument("--note", default="", help="free text for the transcript header")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    task = Task(repo=args.repo, request=args.request, check_command=args.check)
    config = AgentConfig()
    base_url: str | None
    with ExitStack() as stack:
        if args.script is not None:
            api = stack.enter_context(FakeMessagesAPI(load_script(args.script), api_key=FAKE_KEY))
            api_key, base_url, source = FAKE_KEY, api.base_url, "fake-messages-api"
            note = args.note or f"scripted replies from {args.script.name}; usage is scripted"
        else:
            api_key = os.environ.get("ANTHROPIC_API_KEY", "")
            if not api_key:
                print(
                    "ANTHROPIC_API_KEY: required to record against the API (or pass --script)",
                    file=sys.stderr,
                )
                return 2
            base_url = os.environ.get("ANTHROPIC_BASE_URL") or None
            source, note = "anthropic-api", args.note
        client = anthropic_client(api_key=api_key, base_url=base_url)
        stack.callback(client.close)
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agents-record-")))
        workspace = snapshot(args.repo_dir, scratch)
        sandbox = stack.enter_context(
            create_sandbox("record", workspace=workspace, backend=args.backend)
        )
        model = RecordingModel(
            AnthropicModel(client, retry=config.retry),
            args.out,
            source=source,
            note=note,
            meta={
                "task": {
                    "repo": task.repo,
                    "request": task.request,
                    "check_command": task.check_command,
                },
                "role": args.role,
                "model": config.roles.for_role(args.role),
            },
        )
        recorder = MemoryRecorder()
        try:
            result = run_agent(
                task, sandbox=sandbox, model=model, recorder=recorder, config=config, role=args.role
            )
        except AgentError as err:
            print(f"stopped ({err.reason}): {err}", file=sys.stderr)
            return 1
        finally:
            total = recorder.total
            print(
                f"{model.calls} calls, {total.total_tokens:,} tokens, ${total.dollars:.4f}; "
                f"transcript: {args.out}",
                file=sys.stderr,
            )
        print(result.summary)
        if result.notes_for_reviewer:
            print(f"\nNotes for the reviewer: {result.notes_for_reviewer}")
        print(sandbox.export_patch().decode(errors="replace"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
