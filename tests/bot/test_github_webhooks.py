"""GitHub webhooks end to end: the fake GitHub sends signed deliveries to the bot's HTTP
server (the real bolt app's, with the Slack emulator as Slack, on real Redis); the bot
queues them; the job's handler runs them with the real GitHub forge (PyGithub) against
the fake; the blueprint runs the rework on the same branch; the reporter mirrors it all
into the run's Slack thread."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rq import Queue
from rq.job import Job

from fakes.github.server import FakeGitHub
from fakes.github.state import Pull
from jobs.blueprint.runner import run_blueprint
from jobs.blueprint.wiring import open_deps
from jobs.forge.local import LocalForge
from jobs.github_events import handle_event, mentioned
from process import settings
from runs.events import GitHubActivity
from runs.record import Run, RunStatus
from tests.blueprint.conftest import CLEAN_REQUEST, SAMPLE, Scripted, script
from tests.bot.conftest import ALICE, GENERAL, Harness, drain, open_harness

pytestmark = pytest.mark.redis

REPO = "acme/retrying"
TOKEN = "ghs_fakeTOKEN0123456789abcdefXYZ"
SECRET = "webhook-secret-for-tests"


@dataclass
class Loop:
    h: Harness
    fake: FakeGitHub
    worker: settings.WorkerSettings
    models: Scripted

    def run(self, run_id: int) -> Run:
        with open_deps(self.worker, self.h.services.store, models=self.models) as deps:
            return run_blueprint(deps, run_id, by="test")

    def queued(self) -> list[Job]:
        queue = Queue(self.h.services.settings.queue, connection=self.h.services.connection)
        return [j for j in queue.get_jobs() if j.id.startswith("agents-github-")]

    def work(self) -> list[str]:
        """Run the queued webhook jobs' handler, as a worker's github_event_job does."""
        done = []
        services = self.h.services
        with open_deps(self.worker, services.store, models=self.models) as deps:
            for job in self.queued():
                event, _delivery, payload = job.args
                done.append(
                    handle_event(
                        services.store,
                        services.queue,
                        deps.forge,
                        settings.GitHubSurfaceSettings.of(self.worker),
                        event,
                        payload,
                    )
                )
                job.delete()
        return done

    def thread_texts(self, run: Run) -> list[str]:
        drain(self.h.services.reporter)
        return [str(m["text"]) for m in self.h.emu.thread(GENERAL, run.thread_ts or "")]


@pytest.fixture
def loop(real_redis_conn: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Loop]:
    # LocalSandbox takes PATH from the worker: this interpreter's python3 first.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    forge_root = LocalForge(tmp_path / "forge")
    forge_root.create_repo(REPO, source=SAMPLE)
    with (
        FakeGitHub(TOKEN) as fake,
        open_harness(real_redis_conn, github_webhook_secret=SECRET) as h,
    ):
        h.services.reporter.ensure_group()  # the thread is drawn from every event on
        fake.add_repo(REPO, bare=forge_root.repo_path(REPO))
        fake.set_permission(REPO, "octocat", "write")
        fake.set_permission(REPO, "reader", "read")
        fake.deliver_to(h.emu.bot_url.replace("/slack/events", "/github/events"), SECRET)
        worker = settings.load(
            settings.WorkerSettings,
            model_backend="replay",
            forge="github",
            github_token=TOKEN,
            github_api_url=fake.base_url,
            sandbox_backend="local",
            cache_dir=tmp_path / "cache",
            ci_timeout_seconds=0,
            github_channel=GENERAL,
        )
        yield Loop(h, fake, worker, Scripted({1: script("clean"), 2: script("rework")}))


def first_iteration(loop: Loop) -> Run:
    h = loop.h
    ts, _ = h.emu.mention(ALICE, GENERAL, f"in {REPO}: {CLEAN_REQUEST}")
    h.settle()
    run = h.services.store.find_by_thread(GENERAL, ts)
    assert run is not None
    first = loop.run(run.id)
    assert first.status is RunStatus.AWAITING_DECISION, first.error
    assert first.artifacts.pr_number == 1
    return first


def test_a_pr_comment_reworks_the_run_on_the_same_branch(loop: Loop) -> None:
    first = first_iteration(loop)
    delivery = loop.fake.comment(REPO, 1, "octocat", "@agents rename the flag")
    assert (delivery.status, delivery.answer) == (202, "queued\n")
    assert loop.work() == [f"Starting iteration 2 of #{first.id} with @octocat's feedback."]
    reworked = loop.h.services.store.get(first.id)
    assert (reworked.status, reworked.iteration) == (RunStatus.REWORK, 2)
    assert [(f.by, f.text) for f in reworked.pending_feedback] == [
        ("github:octocat", "rename the flag")
    ]
    second = loop.run(first.id)
    assert second.status is RunStatus.AWAITING_DECISION, second.error
    assert second.iteration == 2
    assert second.artifacts.branch == first.artifacts.branch
    assert second.artifacts.pr_number == 1
    assert second.artifacts.start_commit == first.artifacts.head_sha
    assert second.artifacts.head_sha != first.artifacts.head_sha
    (pull,) = loop.fake.pulls(REPO)
    assert pull["head"]["sha"] == second.artifacts.head_sha
    # The answer goes to GitHub too: a comment on the PR naming who asked.
    with loop.fake.state.lock:
        asked, answer = loop.fake.state.repos[REPO].comments[1]
    assert (asked["user"]["login"], asked["body"]) == ("octocat", "@agents rename the flag")
    assert answer["user"]["login"] == "agents-bot"
    assert answer["body"].startswith(
        f"Iteration 2 is pushed ({(second.artifacts.head_sha or '')[:12]}), for @octocat:"
    )
    assert (second.artifacts.summary or "").strip() in answer["body"]
    texts = loop.thread_texts(second)
    assert any("rework requested on GitHub by @octocat: rename the flag" in t for t in texts), texts

    # A redelivery of the same comment is a no-op.
    again = loop.fake.redeliver(delivery.id)
    assert (again.status, again.answer) == (200, "already received; nothing to do\n")
    assert loop.queued() == []


def test_bad_signatures_strangers_and_other_prs_change_nothing(loop: Loop) -> None:
    first = first_iteration(loop)
    store = loop.h.services.store
    url = loop.fake.state.webhooks.url or ""
    loop.fake.deliver_to(url, "not-the-secret")
    forged = loop.fake.comment(REPO, 1, "octocat", "@agents delete the tests")
    loop.fake.deliver_to(url, None)
    unsigned = loop.fake.comment(REPO, 1, "octocat", "@agents delete the tests")
    assert [forged.status, unsigned.status] == [401, 401]
    assert loop.queued() == []

    loop.fake.deliver_to(url, SECRET)
    with loop.fake.state.lock:  # a pull request that is not an agents one
        pr_branch = loop.fake.state.repos[REPO].pulls
        pr_branch.append(Pull(9999, 2, "human PR", "", False, "feature/x", "0" * 40, "main"))
    loop.fake.comment(REPO, 1, "reader", "@agents delete the tests")  # read access only
    loop.fake.comment(REPO, 1, "mallory", "@agents delete the tests")  # no access at all
    loop.fake.comment(REPO, 2, "octocat", "@agents fix this one too")
    loop.fake.comment(REPO, 1, "octocat", "looks good to me")  # no mention
    done = loop.work()
    assert done == [
        f"@reader has no write access to {REPO} (read); their comment was not used",
        f"@mallory has no write access to {REPO} (none); their comment was not used",
        f"{REPO}#2: not an agents pull request; ignored",
        "a comment that does not mention @agents",
    ]
    after = store.get(first.id)
    assert (after.status, after.iteration) == (RunStatus.AWAITING_DECISION, 1)
    ignored = [e for e in store.events(first.id) if isinstance(e, GitHubActivity)]
    assert [(e.login, e.action) for e in ignored] == [("reader", "ignored"), ("mallory", "ignored")]


def test_a_review_comment_carries_its_file_and_line(loop: Loop) -> None:
    first = first_iteration(loop)
    loop.fake.review_comment(REPO, 1, "octocat", "@agents use a constant", "retrying/x.py", 12)
    loop.work()
    run = loop.h.services.store.get(first.id)
    assert [f.text for f in run.pending_feedback] == ["On `retrying/x.py` line 12: use a constant"]


def test_a_review_requesting_changes_reworks_with_all_its_comments(loop: Loop) -> None:
    first = first_iteration(loop)
    loop.fake.review(REPO, 1, "octocat", "approved", "nice")
    loop.fake.review(
        REPO,
        1,
        "octocat",
        "changes_requested",
        "Split the constant out.",
        comments=[
            ("retrying/core.py", 12, "Name this MAX_ATTEMPTS_DEFAULT."),
            ("tests/test_core.py", 40, "Test a limit of zero too."),
        ],
    )
    assert loop.work() == [
        "a review that does not request changes",
        f"Starting iteration 2 of #{first.id} with @octocat's feedback.",
    ]
    run = loop.h.services.store.get(first.id)
    # One feedback: the review's text and each line comment, read through PyGithub.
    assert [(f.by, f.text) for f in run.pending_feedback] == [
        (
            "github:octocat",
            "Review requesting changes: Split the constant out.\n"
            "- On `retrying/core.py` line 12: Name this MAX_ATTEMPTS_DEFAULT.\n"
            "- On `tests/test_core.py` line 40: Test a limit of zero too.",
        )
    ]
    (listed,) = loop.fake.calls("GET", r"/pulls/1/reviews/\d+/comments$")
    assert listed.status == 200


def test_a_merge_on_github_ends_the_run_as_merged(loop: Loop) -> None:
    first = first_iteration(loop)
    with open_deps(loop.worker, loop.h.services.store, models=loop.models) as deps:
        deps.forge.mark_ready(REPO, 1)
        deps.forge.merge(REPO, 1, method="squash")
    assert loop.work() == [f"#{first.id} is merged."]
    merged = loop.h.services.store.get(first.id)
    assert merged.status is RunStatus.MERGED
    assert merged.status.is_final
    texts = loop.thread_texts(merged)
    assert any("pull request merged on GitHub by @agents-bot" in t for t in texts)


def test_a_closed_pr_ends_the_run_as_closed(loop: Loop) -> None:
    first = first_iteration(loop)
    loop.fake.close_pull(REPO, 1, "octocat")
    assert loop.work() == [f"#{first.id} is closed."]
    assert loop.h.services.store.get(first.id).status is RunStatus.CLOSED


def test_a_labelled_issue_starts_a_run_in_the_configured_channel(loop: Loop) -> None:
    h = loop.h
    number = loop.fake.open_issue(REPO, "Make the retry limit configurable", "Say 5.", "alice-gh")
    loop.fake.label_issue(REPO, number, "reader", "agents")  # read access: no run
    loop.fake.label_issue(REPO, number, "octocat", "bug")  # another label
    loop.fake.label_issue(REPO, number, "octocat", "agents")
    done = loop.work()
    assert done[:2] == [
        f"@reader has no write access to {REPO} (read); no run started",
        "label 'bug' is not 'agents'",
    ]
    assert done[2].endswith(f"started from {REPO}#{number}")
    (run,) = h.services.store.list_recent()
    assert (run.repo, run.requester, run.channel) == (REPO, "github:octocat", GENERAL)
    assert run.request == "Make the retry limit configurable\n\nSay 5."
    drain(h.services.reporter)
    run = h.services.store.get(run.id)
    assert run.thread_ts is not None
    root = next(m for m in h.emu.messages(GENERAL) if m["ts"] == run.thread_ts)
    assert f"asked on GitHub by @octocat in {REPO}#{number}" in str(root["text"])
    replies = h.emu.thread(GENERAL, run.thread_ts)
    assert any(m["ts"] == run.status_ts for m in replies)
    assert h.services.store.find_by_thread(GENERAL, run.thread_ts) == run


def test_mentions_are_words() -> None:
    assert mentioned("@agents rename it", "@agents") == "rename it"
    assert mentioned("hey @Agents: rename it", "@agents") == "hey  : rename it"
    assert mentioned("@agentsmith do it", "@agents") is None
    assert mentioned("mail x@agents do it", "@agents") is None
    assert mentioned("no mention", "@agents") is None


def test_a_ci_webhook_replaces_the_poll(loop: Loop) -> None:
    """With polls an hour apart, only the webhook can end this watch: the checks are
    read once before it and once after, whatever the poll interval."""
    loop.worker = loop.worker.model_copy(
        update={"ci_timeout_seconds": 7200, "ci_poll_seconds": 3600, "ci_settle_seconds": 7200}
    )
    h = loop.h
    ts, _ = h.emu.mention(ALICE, GENERAL, f"in {REPO}: {CLEAN_REQUEST}")
    h.settle()
    run = h.services.store.find_by_thread(GENERAL, ts)
    assert run is not None
    result: list[Run] = []
    worker = threading.Thread(target=lambda: result.append(loop.run(run.id)))
    worker.start()
    try:
        head = None
        while head is None:  # until the watch has read the checks once (none yet)
            if not worker.is_alive():
                break
            reads = loop.fake.calls("GET", r"/check-runs$")
            head = reads[0].path.split("/commits/")[1].split("/")[0] if reads else None
            if head is None:
                threading.Event().wait(0.05)
        assert head is not None, "the run never watched CI"
        delivery = loop.fake.complete_checks(REPO, head, "success")
        assert delivery.status == 202
        assert loop.work() == [
            f"check_suite completed on {REPO}@{head[:12]}: its CI watch is woken"
        ]
    finally:
        worker.join(timeout=600)
    (final,) = result
    assert final.status is RunStatus.AWAITING_DECISION, final.error
    assert final.artifacts.ci is not None
    assert (final.artifacts.ci.state, final.artifacts.ci.polls) == ("success", 2)
    assert len(loop.fake.calls("GET", r"/check-runs$")) == 2


def test_an_issue_comment_mentioning_the_bot_starts_a_run(loop: Loop) -> None:
    number = loop.fake.open_issue(REPO, "Retry limit", "It is hard-coded.", "alice-gh")
    loop.fake.comment(REPO, number, "octocat", "thanks")  # no mention: nothing
    loop.fake.comment(REPO, number, "octocat", "@agents make it configurable")
    done = loop.work()
    assert done[0] == "a comment that does not mention @agents"
    assert done[1].endswith(f"started from {REPO}#{number}")
    (run,) = loop.h.services.store.list_recent()
    assert run.request == "Retry limit\n\nIt is hard-coded.\n\nmake it configurable"


def test_the_queued_delivery_runs_as_an_rq_job(loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's entry point, wired from the worker's settings (the environment)."""
    from rq import SimpleWorker

    first = first_iteration(loop)
    queue = Queue(loop.h.services.settings.queue, connection=loop.h.services.connection)
    queue.empty()  # the mention's run job: run in-process above
    for name, value in {
        "AGENTS_FORGE": "github",
        "GITHUB_TOKEN": TOKEN,
        "AGENTS_GITHUB_API_URL": loop.fake.base_url,
        "AGENTS_MODEL_BACKEND": "replay",
        "AGENTS_GITHUB_CHANNEL": GENERAL,
    }.items():
        monkeypatch.setenv(name, value)
    loop.fake.comment(REPO, 1, "octocat", "@agents rename the flag")
    (job,) = loop.queued()
    # This job alone: the rework's run job it enqueues is for a worker with a model.
    SimpleWorker([queue], connection=queue.connection).execute_job(job, queue)
    assert job.get_status(refresh=True) == "finished"
    assert job.return_value() == f"Starting iteration 2 of #{first.id} with @octocat's feedback."
    run = loop.h.services.store.get(first.id)
    assert (run.status, run.iteration) == (RunStatus.REWORK, 2)
    assert f"agents-run-{first.id}-2" in queue.get_job_ids()


def test_a_review_whose_comments_cannot_be_read_still_gives_its_text() -> None:
    """The forge refusing the review's comments (a 404 here) leaves the review's text."""
    from jobs.forge.github import GitHubForge
    from jobs.github_events import review_feedback

    with (
        FakeGitHub(TOKEN) as fake,
        GitHubForge(TOKEN, base_url=fake.base_url, throttle=False) as forge,
    ):
        fake.add_repo(REPO)
        with fake.state.lock:
            fake.state.repos[REPO].pulls.append(Pull(7, 1, "t", "", False, "b", "0" * 40, "main"))
        fake.set_permission(REPO, "octocat", "write")
        fake.review(REPO, 1, "octocat", "changes_requested", "Split it.", [("a.py", 1, "Here.")])
        (review_id,) = fake.state.repos[REPO].pulls[0].review_comments
        payload = {"pull_request": {"number": 1}, "review": {"id": review_id, "body": "Split it."}}
        assert review_feedback(forge, REPO, payload) == (
            "Review requesting changes: Split it.\n- On `a.py` line 1: Here."
        )
        fake.fail_next("GET", r"/reviews/\d+/comments$", status=404)
        assert review_feedback(forge, REPO, payload) == "Review requesting changes: Split it."
        hostile = {"pull_request": {"number": "1"}, "review": {"id": None, "body": 5}}
        assert review_feedback(forge, REPO, hostile) == "Review requesting changes:"
