"""Model API faults over a whole run, and two stores publishing to one repository.

The model faults go through a real `agents worker` (Docker sandbox, local forge) whose
model is the real anthropic SDK talking to the fake Messages API: 429, 529 and 500
answers in the middle of the run are retried and the run completes; an API that keeps
failing fails the run, with a message in its thread that says why.
"""

from __future__ import annotations

from pathlib import Path

import fakeredis
import pytest
import redis

from bot.milestones import milestone
from fakes.anthropic import Failure, FakeMessagesAPI, Reply, load_script
from jobs.forge.local import LocalForge
from jobs.forge.steps import PublishRequest, push_and_open_pr
from runs.events import ModelFellBack, ModelRetried, StatusChanged
from runs.record import RunStatus
from runs.store import RunStore
from tests.blueprint.conftest import CLEAN_REQUEST, REPO, SAMPLE, SCRIPTS
from tests.blueprint.e2e import (
    Workers,
    docker_client,
    require_image,
    wait_status,
    worker_env,
)
from tests.blueprint.helpers import commits, git
from tests.reliability.harness import (
    record_fault,
    sample_on_local_forge,
    store_containers,
)

API_KEY = "sk-ant-fault-test-0123456789"
NOW = {"retry-after": "0"}


def flaky_script() -> list[Reply]:
    """The clean run's replies, with a 429, a 529 and a 500 in between."""
    replies = load_script(SCRIPTS / "clean.script.json")
    faults: list[Reply] = [
        Failure(429, "rate_limit_error", "slow down", headers=NOW),
        Failure(529, "overloaded_error", "overloaded", headers=NOW),
        Failure(500, "api_error", "internal error"),
    ]
    out: list[Reply] = []
    for i, reply in enumerate(replies):
        if i in (0, 2, 4):
            out.append(faults[i // 2])
        out.append(reply)
    return out


@pytest.mark.redis
@pytest.mark.docker
@pytest.mark.slow
def test_model_faults_are_retried_and_a_persistent_one_fails_the_run_clearly(
    real_redis_conn: redis.Redis, workers: Workers, tmp_path: Path
) -> None:
    client = docker_client()
    require_image(client)
    forge, store, queue = sample_on_local_forge(real_redis_conn, tmp_path, "faults-model")
    with FakeMessagesAPI(flaky_script(), api_key=API_KEY) as api:
        env = worker_env(
            tmp_path,
            "faults-model",
            AGENTS_MODEL_BACKEND="anthropic",
            ANTHROPIC_API_KEY=API_KEY,
            ANTHROPIC_BASE_URL=api.base_url,
        )
        workers.start(env, "model")
        flaky = store.create(requester="U1", repo=REPO, request=CLEAN_REQUEST)
        queue.enqueue(flaky)
        done = wait_status(store, flaky.id, RunStatus.AWAITING_DECISION, RunStatus.FAILED)
        assert done.status is RunStatus.AWAITING_DECISION, done.error
        assert len(forge.list_prs(REPO)) == 1
        retried = [e for e in store.events(flaky.id) if e.kind == "model_retry"]
        # The 429 and the 500 are retried; the 529 (overloaded) hands the builder to its
        # fallback model at once. Each is on the run's record, for its thread.
        assert [e.status for e in retried if isinstance(e, ModelRetried)] == [429, 500]
        fell = [e for e in store.events(flaky.id) if isinstance(e, ModelFellBack)]
        assert [(e.role, e.cause) for e in fell] == [("builder", "overloaded")]
        assert len(api.requests) == len(flaky_script())

        # Now the API only fails: six 500s are all the retries there are, for the
        # builder's model and then for its fallback.
        api.add(*[Failure(500, "api_error", "internal error", headers=NOW)] * 12)
        broken = store.create(requester="U1", repo=REPO, request=CLEAN_REQUEST)
        queue.enqueue(broken)
        failed = wait_status(store, broken.id, RunStatus.AWAITING_DECISION, RunStatus.FAILED)
    assert failed.status is RunStatus.FAILED
    assert failed.error is not None
    assert "500" in failed.error or "internal error" in failed.error
    fell = [e for e in store.events(broken.id) if isinstance(e, ModelFellBack)]
    assert [(e.role, e.cause) for e in fell] == [("builder", "unavailable")]
    [event] = [
        e
        for e in store.events(broken.id)
        if isinstance(e, StatusChanged) and e.to == RunStatus.FAILED.value
    ]
    reply = milestone(event, failed)
    assert reply is not None
    text = reply[0]
    assert text.startswith(f":x: {failed.label} failed: ")
    assert "internal error" in text or "500" in text
    assert len(forge.list_prs(REPO)) == 1  # the failed run opened nothing
    assert store_containers(client, store, [flaky.id, broken.id]) == []
    client.close()

    record_fault(
        "model API 429 / 529 / 500, then success",
        "fake Messages API (real anthropic SDK) answering 429, 529 and 500 between the "
        "clean run's replies",
        1,
        "429 and 500 retried once each (2 retry events on the run), 529 handed to the "
        "builder's fallback model at once (a model_fallback event); the run completed "
        "with 1 PR",
        rank=10,
    )
    record_fault(
        "model API failing persistently",
        "fake Messages API answering 500 to every retry, of the model and its fallback",
        1,
        f"the run failed; its thread says “{text}”",
        rank=11,
    )


def test_two_stores_publishing_to_one_repository_do_not_collide(tmp_path: Path) -> None:
    """Run #1 of two stores: two branches, two commits, two PRs; each store's publish
    run again finds its own commit and PR."""
    forge = LocalForge(tmp_path / "forge")
    forge.create_repo(REPO, source=SAMPLE)
    stores = [RunStore(fakeredis.FakeRedis(), prefix=p) for p in ("one", "two")]
    assert stores[0].nonce != stores[1].nonce
    assert stores[0].nonce == RunStore(stores[0].redis, prefix="one").nonce  # kept in the store
    base = forge.remote_head(REPO, "main") or ""
    patch = (
        b"diff --git a/NOTES.md b/NOTES.md\nnew file mode 100644\n--- /dev/null\n"
        b"+++ b/NOTES.md\n@@ -0,0 +1 @@\n+notes\n"
    )

    def request(store: RunStore) -> PublishRequest:
        return PublishRequest(
            run_id=1,
            repo=REPO,
            request="add notes",
            summary="Added notes.",
            patch=patch,
            base_commit=base,
            nonce=store.nonce,
        )

    results = [push_and_open_pr(forge, request(s), tmp_path / f"work-{s.prefix}") for s in stores]
    again = [push_and_open_pr(forge, request(s), tmp_path / f"again-{s.prefix}") for s in stores]
    branches = [r.branch for r in results]
    assert branches == [f"agents/1-{s.nonce}-add-notes" for s in stores]
    assert len(forge.list_prs(REPO)) == 2
    for first, second, store in zip(results, again, stores, strict=True):
        assert second.branch == first.branch
        assert not second.committed
        assert not second.pr_created
        assert second.pr.number == first.pr.number
        [message] = commits(forge.repo_path(REPO), first.branch)
        assert f"Agents-Run: #1@{store.nonce} iteration 1" in message
    assert git(forge.repo_path(REPO), "rev-parse", "main") == base
