"""Acceptance: the same flow against GitHub, through real PyGithub and real git over
HTTP, talking to a local fake GitHub server. Checks the HTTP calls made, and that the
token is nowhere it should not be: workspace and mirror (``.git/config`` included),
the sandbox's environment, the worker's logs, and the run records in Redis."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest
import redis

from fakes.github.server import FakeGitHub
from jobs.forge.local import LocalForge
from jobs.queue import RunQueue
from runs.record import RunStatus
from runs.store import RunStore
from sandboxes import labels
from tests.blueprint.conftest import CLEAN_REQUEST, REPO, SAMPLE
from tests.blueprint.e2e import (
    Workers,
    docker_client,
    github_env,
    redis_dump,
    require_image,
    unpacked,
    wait_status,
)
from tests.blueprint.helpers import commits

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow]

TOKEN = "ghs_e2eT0KENdoNotLeak0123456789abcdef"
BASIC = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()


def leaks(data: bytes) -> bool:
    forms = (TOKEN.encode(), BASIC.encode())
    return any(form in blob for form in forms for blob in unpacked(data))


class SandboxSpy(threading.Thread):
    """Looks into the run's sandbox while it exists: its environment, as Docker and as a
    command inside it see it."""

    def __init__(self, run_id: int) -> None:
        super().__init__(daemon=True)
        self.run_id = run_id
        self.seen: list[bytes] = []
        self.stop = threading.Event()

    def run(self) -> None:
        client = docker_client()
        try:
            while not self.stop.wait(0.2):
                for container in client.containers.list(
                    filters={"label": f"{labels.RUN_ID}={self.run_id}"}, ignore_removed=True
                ):
                    try:
                        env = container.attrs["Config"]["Env"] or []
                        result = container.exec_run(["env"], user="1000:1000")
                    except Exception:  # noqa: S112 - it went away meanwhile
                        continue
                    self.seen.append("\n".join(env).encode() + b"\n" + result.output)
        finally:
            client.close()


def report_ci_when_the_pr_opens(fake: FakeGitHub, stop: threading.Event) -> None:
    while not stop.wait(0.1):
        pulls = fake.pulls(REPO)
        if pulls:
            sha = pulls[0]["head"]["sha"]
            fake.set_check_runs(
                REPO, sha, [{"name": "ci/test", "status": "completed", "conclusion": "success"}]
            )
            return


def test_the_flow_against_github_makes_the_expected_calls_and_leaks_no_token(
    real_redis_conn: redis.Redis, workers: Workers, tmp_path: Path
) -> None:
    client = docker_client()
    require_image(client)
    client.close()
    bare = LocalForge(tmp_path / "origin").create_repo(REPO, source=SAMPLE)
    store = RunStore(real_redis_conn)
    queue = RunQueue(real_redis_conn, store, name="e2e-gh")
    with FakeGitHub(token=TOKEN) as fake:
        fake.add_repo(REPO, bare=bare)
        fake.set_permission(REPO, "octocat", "write")
        env = github_env(
            tmp_path,
            "e2e-gh",
            fake.base_url,
            TOKEN,
            AGENTS_APPROVE_ACTION="merge",
            AGENTS_REQUIRE_GITHUB_WRITE="true",
            AGENTS_USER_MAP="U1=octocat",
        )
        run = store.create(requester="U1", repo=REPO, request=CLEAN_REQUEST)
        spy = SandboxSpy(run.id)
        spy.start()
        stop = threading.Event()
        ci = threading.Thread(target=report_ci_when_the_pr_opens, args=(fake, stop))
        ci.start()
        try:
            workers.start(env, "e2e-gh")
            queue.enqueue(run)
            done = wait_status(store, run.id, RunStatus.AWAITING_DECISION, RunStatus.FAILED)
            assert done.status is RunStatus.AWAITING_DECISION, done.error
            assert done.artifacts.ci is not None
            assert done.artifacts.ci.state == "success"
            queue.request_approval(done, by="U1")
            approved = wait_status(store, run.id, RunStatus.APPROVED)
        finally:
            stop.set()
            ci.join()
            spy.stop.set()
            spy.join()

        sha = done.artifacts.head_sha
        calls = fake.api_calls()
        pulls = f"/repos/{REPO}/pulls"
        assert calls.count(("POST", pulls)) == 1
        assert ("GET", f"/repos/{REPO}/commits/{sha}/check-runs") in calls
        assert ("GET", f"/repos/{REPO}/commits/{sha}/status") in calls
        assert ("GET", f"/repos/{REPO}/collaborators/octocat/permission") in calls
        assert ("POST", "/graphql") in calls  # markPullRequestReadyForReview
        assert ("PUT", f"{pulls}/1/merge") in calls
        steps = [("POST", pulls), ("POST", "/graphql"), ("PUT", f"{pulls}/1/merge")]
        order = [calls.index(call) for call in steps]
        assert order == sorted(order)
        [pr] = fake.pulls(REPO)
        assert pr["merged"] is True
        assert pr["draft"] is False
        [message] = commits(bare, pr["head"]["ref"])
        assert "Co-authored-by: octocat <octocat@users.noreply.github.com>" in message
        assert approved.status_by == "U1"
        assert all(r.authorized for r in fake.requests)

        # The token is nowhere: not in files the worker wrote (the mirror and its
        # config, workspaces), not in the sandbox, logs or run records. The publishing
        # repository is gone once the push is done (tests/forge/test_secrets.py scans
        # one while it exists).
        assert spy.seen, "the sandbox was never seen while it existed"
        assert not any(leaks(env) for env in spy.seen)
        written = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
        assert any(p.name == "config" and p.parent.name.endswith(".git") for p in written)
        assert list((tmp_path / "cache" / "publish").iterdir()) == []
        assert [p for p in written if leaks(p.read_bytes())] == []
        assert TOKEN not in workers.logs()
        assert BASIC not in workers.logs()
        assert [key for key, value in redis_dump(real_redis_conn) if leaks(value)] == []
        assert not leaks(pr["body"].encode())
