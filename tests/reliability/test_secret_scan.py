"""Secret scan: every secret setting, set to a recognisable value, used by a full flow,
and then searched for everywhere it must not be.

The flow is the product's: a mention delivered by the Slack emulator over signed HTTP
to a real `agents bot` process (which posts with the bot token), a real `agents
worker` process running the blueprint in a Docker sandbox, the real Anthropic SDK
against the fake Messages API (which checks the key), and the fake GitHub reached by
real PyGithub and a real `git push` (which check the token). Approve is clicked in the
thread and merges the PR.

Every secret is in the worker's environment, Slack's included, as if one `.env`
served both processes; the bot gets all but the app token (with it, the bot would
switch to Socket Mode, which the emulator does not speak). Both log at DEBUG.

The sandbox is held open at a known point: the scripted model's last builder turn runs
a command that waits for a file the test writes, so the test looks inside the
container (its environment, every process's ``/proc/<pid>/environ``, its whole
filesystem) while the agent's command is running in it.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import redis

from fakes.anthropic import FakeMessagesAPI, message, tool_use
from fakes.github.server import FakeGitHub
from fakes.slack.server import SlackEmulator
from jobs.forge.local import LocalForge
from runs.record import RunStatus
from runs.store import RunStore
from sandboxes import labels
from sandboxes.reaper import Reaper
from tests.blueprint.conftest import CLEAN_REQUEST, REPO, SAMPLE, SCRIPTS
from tests.blueprint.e2e import (
    Workers,
    docker_client,
    redis_dump,
    require_image,
    unpacked,
    wait_for,
    wait_status,
    worker_env,
)
from tests.reliability.bot_process import (
    BotProcess,
    all_messages,
    approve_button_ts,
    bot_env,
    start_bot,
)
from tests.reliability.figures import record as record_figure

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow]

CHANNEL = "C_GENERAL"
REQUESTER = "U_ALICE"
QUEUE = "secret-scan"
HELD = "/tmp/agents-scan-held"  # inside the container
RELEASE = "/tmp/agents-scan-release"
#: The agent's command that holds the sandbox open until the test has looked, then
#: prints what a command in the sandbox can see of its environment.
HOLD = (
    f": > {HELD}; i=0; "
    f"while [ ! -e {RELEASE} ] && [ $i -lt 1500 ]; do sleep 0.2; i=$((i+1)); done; "
    "echo '== env'; env; echo '== /proc/*/environ'; "
    "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < \"$f\" 2>/dev/null; done"
)
#: A marker in every secret value; the sandbox is searched for it (and for the base64
#: of git's Basic credentials), so the secrets themselves never go into the container,
#: not even on a grep command line.
MARK = "SCAN"
BASIC_PREFIX = base64.b64encode(b"x-access-token:").decode()[:20]

PLACES = (
    "sandbox env (docker inspect)",
    "sandbox /proc/*/environ",
    "sandbox filesystem",
    "worker log",
    "bot log",
    "worker's files",
    "run records (Redis)",
    "Slack messages",
    "PR and commits",
    "model API requests",
)


def make_secrets() -> dict[str, str]:
    def tag() -> str:
        return secrets.token_hex(12)

    return {
        "SLACK_BOT_TOKEN": f"xoxb-{MARK}-{tag()}",
        "SLACK_APP_TOKEN": f"xapp-{MARK}-{tag()}",
        "SLACK_SIGNING_SECRET": f"{MARK}signing{tag()}",
        "GITHUB_TOKEN": f"ghs_{MARK}{tag()}",
        "ANTHROPIC_API_KEY": f"sk-ant-{MARK}-{tag()}",
    }


def needles(name: str, value: str) -> list[bytes]:
    """What counts as a hit for one secret: its value from the marker on (so a value
    with its prefix cut off still counts), and for the GitHub token the Basic
    credentials git sends."""
    forms = [value[value.index(MARK) :].encode()]
    if name == "GITHUB_TOKEN":
        forms.append(base64.b64encode(f"x-access-token:{value}".encode()))
    return forms


def count_hits(blobs: list[bytes], forms: list[bytes]) -> int:
    return sum(
        candidate.count(form) for blob in blobs for candidate in unpacked(blob) for form in forms
    )


def files_under(root: Path, skip: tuple[Path, ...]) -> list[bytes]:
    blobs = []
    for path in root.rglob("*"):
        if any(path.is_relative_to(s) for s in skip):
            continue
        if path.is_file() and not path.is_symlink():
            blobs.append(path.read_bytes())
    return blobs


def environ_of(pid: int) -> bytes:
    """The environment ``pid`` was started with. Popen returns once the child's exec
    has begun, a moment before the kernel shows its environment, so this waits for it."""

    def shown() -> bytes:
        try:
            return Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            return b""

    wait_for(lambda: shown() != b"", f"/proc/{pid}/environ to show the environment", 30)
    return shown()


def api_key(headers: dict[str, str]) -> str:
    """The key a Messages API request carried: ``x-api-key``, or a bearer token."""
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")


def scan_script() -> list[dict[str, Any]]:
    """The clean transcript's scripted replies, with the hold just before `finish`."""
    replies: list[dict[str, Any]] = json.loads((SCRIPTS / "clean.script.json").read_text())
    finish = next(
        i
        for i, reply in enumerate(replies)
        if any(block.get("name") == "finish" for block in reply["content"])
    )
    hold = message(tool_use("toolu_hold", "run", {"command": HOLD, "timeout": 600}))
    return [*replies[:finish], hold, *replies[finish:]]


@pytest.fixture
def docker_api() -> Iterator[docker.DockerClient]:
    client = docker_client()
    try:
        require_image(client)
        yield client
    finally:
        client.close()


def test_no_secret_reaches_the_sandbox_logs_records_slack_or_the_pr(
    real_redis_conn: redis.Redis, docker_api: docker.DockerClient, tmp_path: Path
) -> None:
    values = make_secrets()
    store = RunStore(real_redis_conn)
    origin = LocalForge(tmp_path / "origin")
    bare = origin.create_repo(REPO, source=SAMPLE)
    workers = Workers(tmp_path)
    bot: BotProcess | None = None
    seen: dict[str, list[bytes]] = {place: [] for place in PLACES}
    process_env: dict[str, bytes] = {}
    control: dict[str, bool] = {}
    emu = SlackEmulator(
        bot_token=values["SLACK_BOT_TOKEN"], signing_secret=values["SLACK_SIGNING_SECRET"]
    )
    with (
        emu,
        FakeGitHub(token=values["GITHUB_TOKEN"]) as github,
        FakeMessagesAPI(scan_script(), api_key=values["ANTHROPIC_API_KEY"]) as model_api,
    ):
        github.add_repo(REPO, bare=bare)
        github.set_permission(REPO, "octocat", "write")
        try:
            bot = start_bot(
                tmp_path,
                bot_env(
                    emu,
                    CHANNEL,
                    REPO,
                    QUEUE,
                    AGENTS_LOG_LEVEL="DEBUG",
                    GITHUB_TOKEN=values["GITHUB_TOKEN"],
                    ANTHROPIC_API_KEY=values["ANTHROPIC_API_KEY"],
                ),
            )
            emu.bot_url = bot.events_url
            worker = workers.start(
                worker_env(
                    tmp_path,
                    QUEUE,
                    **values,
                    AGENTS_LOG_LEVEL="DEBUG",
                    AGENTS_MODEL_BACKEND="anthropic",
                    ANTHROPIC_BASE_URL=model_api.base_url,
                    AGENTS_FORGE="github",
                    AGENTS_GITHUB_API_URL=github.base_url,
                    AGENTS_APPROVE_ACTION="merge",
                    AGENTS_REQUIRE_GITHUB_WRITE="true",
                    AGENTS_USER_MAP=f"{REQUESTER}=octocat",
                ),
                "scan",
            )
            process_env = {"bot": environ_of(bot.proc.pid), "worker": environ_of(worker.pid)}

            ts, delivery = emu.mention(REQUESTER, CHANNEL, CLEAN_REQUEST)
            assert delivery.status == 200
            run = emu.wait_for(
                lambda: store.find_by_thread(CHANNEL, ts), 60, "the bot to create the run"
            )

            # The agent's command is waiting in the sandbox: look inside.
            mine = [f"{labels.RUN_ID}={run.id}", f"{labels.STORE}={store.identity}"]

            def held() -> Any:
                for container in docker_api.containers.list(
                    filters={"label": mine}, ignore_removed=True
                ):
                    try:
                        if container.exec_run(["test", "-e", HELD]).exit_code == 0:
                            return container
                    except docker.errors.APIError:
                        continue
                if store.get(run.id).status.is_final:
                    pytest.fail(f"the run ended before the hold: {store.get(run.id).error}")
                return None

            container = emu.wait_for(held, 240, "the agent's command to hold the sandbox")
            container.reload()
            env = "\n".join(container.attrs["Config"]["Env"] or []).encode()
            seen["sandbox env (docker inspect)"].append(env)
            environs = container.exec_run(
                ["sh", "-c", "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < \"$f\"; done"]
            ).output
            seen["sandbox /proc/*/environ"].append(environs)
            # Files holding the marker (a fixed-string pass over everything but /proc,
            # /sys and /dev), then the marked strings in them.
            search = (
                f"grep -r -s -a -l -F -e {MARK} -e {BASIC_PREFIX} / --exclude-dir=proc "
                "--exclude-dir=sys --exclude-dir=dev | while IFS= read -r f; do "
                f"grep -a -o -E '{MARK}[A-Za-z0-9_-]*|{BASIC_PREFIX}[A-Za-z0-9+/=]*' \"$f\"; "
                "done"
            )
            # A decoy with the marker, to show the search finds one where a leak would be.
            container.exec_run(["sh", "-c", f"echo decoy-{MARK}-decoy > /tmp/decoy"])
            # As the sandbox's user, and as root (which reads root's files even with
            # every capability dropped).
            searches = [
                container.exec_run(["sh", "-c", search], user=user, demux=True)
                for user in ("", "0")
            ]
            seen["sandbox filesystem"] += [s.output[0] or b"" for s in searches]
            workspace = container.exec_run(["grep", "-r", "-l", "max_attempts", "/workspace"])
            control["sandbox"] = (
                b"PATH=" in env
                and b"HOME=" in environs
                and b"retry.py" in workspace.output
                and all(f"{MARK}-decoy".encode() in (s.output[0] or b"") for s in searches)
            )
            container.exec_run(["touch", RELEASE])

            done = wait_status(store, run.id, RunStatus.AWAITING_DECISION, RunStatus.FAILED)
            assert done.status is RunStatus.AWAITING_DECISION, done.error
            button = emu.wait_for(
                lambda: approve_button_ts(emu, CHANNEL, ts), 60, "the Approve button"
            )
            assert emu.click(REQUESTER, CHANNEL, button, "agents_approve").status == 200
            approved = wait_status(store, run.id, RunStatus.APPROVED, RunStatus.FAILED)
            assert approved.status is RunStatus.APPROVED, approved.error
            emu.wait_for_message(CHANNEL, "approved by", timeout=60)
            emu.slash(REQUESTER, CHANNEL, "/agents", "status")
            emu.slash(REQUESTER, CHANNEL, "/agents", f"status {run.id}")
            emu.wait_for(lambda: len(emu.ephemerals(REQUESTER)) >= 2, 30, "the status answers")
        finally:
            if bot is not None:
                bot.stop()
            workers.stop()

        # Nothing left behind once the reaper has run.
        Reaper(docker_api, is_final=store.is_final, store=store.identity).reap()
        left = [
            c.name
            for c in docker_api.containers.list(
                all=True, filters={"label": mine}, ignore_removed=True
            )
        ]

        seen["worker log"].append(workers.logs().encode())
        seen["bot log"].append(bot.logs().encode() if bot else b"")
        seen["worker's files"] = files_under(
            tmp_path, skip=(tmp_path / "origin", *(tmp_path.glob("*.log")))
        )
        seen["run records (Redis)"] = [value for _, value in redis_dump(real_redis_conn)]
        seen["Slack messages"].append(json.dumps(all_messages(emu)).encode())
        seen["Slack messages"].append(json.dumps(emu.views()).encode())
        pulls = github.pulls(REPO)
        history = subprocess.run(
            ["git", "log", "-p", "--all", "--format=fuller"],
            cwd=bare,
            capture_output=True,
            check=True,
        ).stdout
        refs = subprocess.run(
            ["git", "for-each-ref"], cwd=bare, capture_output=True, check=True
        ).stdout
        seen["PR and commits"] += [json.dumps(pulls).encode(), history, refs]
        seen["model API requests"].append(json.dumps(model_api.bodies).encode())

        used = {
            "SLACK_BOT_TOKEN": any(call.ok for call in emu.calls()),
            "SLACK_APP_TOKEN": True,  # set, not used: HTTP mode
            "SLACK_SIGNING_SECRET": all(d.status == 200 for d in emu.deliveries),
            "GITHUB_TOKEN": bool(github.calls(path="git-receive-pack"))
            and all(r.authorized for r in github.requests),
            "ANTHROPIC_API_KEY": bool(model_api.requests)
            and all(api_key(r.headers) == values["ANTHROPIC_API_KEY"] for r in model_api.requests),
        }

    hits = {
        name: {place: count_hits(seen[place], needles(name, value)) for place in PLACES}
        for name, value in values.items()
    }
    where_set = {
        name: " + ".join(
            process for process, environ in process_env.items() if value.encode() in environ
        )
        for name, value in values.items()
    }
    record_figure(
        "secret-scan",
        "Secret scan: hits per secret and place",
        ["secret", "set in", *PLACES],
        [[name, where_set[name], *hits[name].values()] for name in values],
        notes=(
            "Each secret is a fresh value with a marker (`xoxb-SCAN-…`, `ghs_SCAN…`, "
            "`sk-ant-SCAN-…`); a hit is its value from the marker on, in any blob, also "
            "inside zlib or gzip data (RQ compresses job payloads), and for the GitHub "
            "token the base64 `x-access-token:` credentials git sends. Used for real: the "
            "bot posted with its token, the emulator signed every delivery, the worker "
            "pushed and merged on the fake GitHub with its token, and the SDK sent the key "
            "to the fake Messages API on every call. The app token is set but unused (HTTP "
            "mode). The sandbox was searched while the agent's command ran in it: `docker "
            "inspect`, every `/proc/<pid>/environ`, `grep -r` over its whole filesystem "
            "(image, tmpfs and workspace volume), and what that command printed reached "
            "the model, whose requests are searched too. Worker's files: everything the "
            "worker wrote (mirror, workspaces, `.git/config`). PR and commits: the fake "
            "GitHub's pull request and `git log -p --all` of the pushed repository. "
            f"Sandbox containers of the run left after the reaper: {len(left)}."
        ),
        order=50,
    )

    assert control.get("sandbox"), "the sandbox was not searched as intended"
    assert all(used.values()), used
    # The search itself finds each secret where it is: in the worker's environment.
    assert all(count_hits([process_env["worker"]], needles(n, v)) for n, v in values.items())
    assert left == []
    leaks = {name: {p: n for p, n in row.items() if n} for name, row in hits.items()}
    assert all(not row for row in leaks.values()), leaks
    assert len(pulls) == 1
    assert pulls[0]["merged"] is True
