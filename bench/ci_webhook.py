"""CI webhooks against polling: forge API calls per run's CI watch.

A run's CI watch reads the pushed head's checks (check runs and the combined status)
until CI finishes. Polling reads them every ``AGENTS_CI_POLL_SECONDS``; where the
repository sends CI webhooks, a ``check_suite`` completed wakes the watch at once and
polls are :data:`jobs.ci_events.WEBHOOK_POLL_FACTOR` times further apart, as a fallback.

Both watches run here, alternated pair by pair, through the product's own parts: the
watch loop (:func:`jobs.forge.poll_ci` with :func:`jobs.ci_events.waiter`, as
``jobs/blueprint/steps/watch_ci.py`` calls it), the real GitHub forge (PyGithub) against
the fake GitHub, and for the webhook the fake's signed delivery to the bot's receiver
(:mod:`bot.github_webhooks`, over HTTP, on real Redis) and the worker's handler
(:func:`jobs.github_events.handle_event`). What is counted is every API request the fake
GitHub served during the watch. Time is scaled down a hundredfold (a 15 s poll and a
5-minute CI become 0.15 s and 3 s) so the figure takes seconds; the counts depend only
on the ratio of the two. The seconds in the details are given unscaled.
"""

from __future__ import annotations

import secrets
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from rq import Queue

from bench.stats import Figure, Result, Target
from bot.github_webhooks import GitHubWebhooks, github_endpoint
from fakes.github.server import FakeGitHub
from jobs import ci_events
from jobs.forge import poll_ci
from jobs.forge.github import GitHubForge
from jobs.github_events import handle_event
from jobs.queue import RunQueue
from process.http import HttpServer
from process.settings import GitHubSurfaceSettings
from runs.store import RunStore

REPO = "acme/retrying"
QUEUE = "agents-bench-ci"
#: The default poll (``AGENTS_CI_POLL_SECONDS``) and a 5-minute CI, in seconds; the
#: benchmark runs them :data:`SCALE` times as fast.
POLL_SECONDS = 15.0
CI_SECONDS = 300.0
SCALE = 0.01
#: ``--quick`` (the smoke test, whose figures are not kept): five times faster again.
QUICK_SCALE = 0.002


@contextmanager
def receiver(conn: redis.Redis, store: RunStore, secret: str) -> Iterator[str]:
    """The bot's ``/github/events`` over HTTP, and a worker thread acting on what it
    queues (as ``github_event_job`` does); yields the URL to deliver to."""
    webhooks = GitHubWebhooks(conn, store, secret=secret, queue=QUEUE, allowed_repos=[REPO])
    server = HttpServer(github_endpoint(webhooks), "127.0.0.1", 0)
    queue = Queue(QUEUE, connection=conn)
    runs = RunQueue(conn, store, name=QUEUE)
    config = GitHubSurfaceSettings()
    stop = threading.Event()

    def work() -> None:
        with GitHubForge("unused", base_url="http://127.0.0.1:9", throttle=False) as forge:
            while not stop.is_set():
                for job in queue.get_jobs():
                    event, _delivery, payload = job.args
                    handle_event(store, runs, forge, config, event, payload)
                    job.delete()
                stop.wait(0.005)

    threads = [
        threading.Thread(target=server.serve_forever, daemon=True),
        threading.Thread(target=work, daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}/github/events"
    finally:
        stop.set()
        server.stop()
        for thread in threads:
            thread.join(timeout=10)


def watch_once(
    fake: FakeGitHub, store: RunStore, sha: str, *, webhook: bool, scale: float
) -> tuple[int, float]:
    """One run's CI watch of ``sha``: (API requests served, seconds from CI finishing to
    the watch ending, unscaled). CI finishes :data:`CI_SECONDS` after the watch starts."""
    interval = POLL_SECONDS * scale
    if ci_events.webhooks_seen(store.redis, store.prefix, REPO):
        interval *= ci_events.WEBHOOK_POLL_FACTOR
    assert ci_events.webhooks_seen(store.redis, store.prefix, REPO) is webhook
    finished: list[float] = []

    def ci() -> None:
        time.sleep(CI_SECONDS * scale)
        finished.append(time.monotonic())
        fake.complete_checks(REPO, sha, "success")  # the check_suite webhook, if hooked

    before = len(fake.api_calls())
    runner = threading.Thread(target=ci)
    with GitHubForge(fake.token, base_url=fake.base_url, throttle=False) as forge:
        runner.start()
        outcome = poll_ci(
            forge,
            REPO,
            sha,
            timeout=CI_SECONDS * scale * 10,
            interval=interval,
            settle=CI_SECONDS * scale * 10,
            sleep=ci_events.waiter(store.redis, store.prefix, REPO, sha),
        )
        ended = time.monotonic()
        runner.join()
    if outcome.state != "success":
        raise RuntimeError(f"the CI watch ended {outcome.state}, not success")
    return len(fake.api_calls()) - before, (ended - finished[0]) / scale


def run(conn: redis.Redis, rounds: int, *, scale: float = SCALE) -> Result:
    store = RunStore(conn, prefix=f"bench-ci-{secrets.token_hex(4)}")
    secret = secrets.token_hex(16)
    polled: list[float] = []
    hooked: list[float] = []
    lags: dict[str, list[float]] = {"polling": [], "webhook": []}
    with FakeGitHub(secrets.token_hex(16)) as fake, receiver(conn, store, secret) as url:
        fake.add_repo(REPO)
        for n in range(rounds):
            # Polling: no webhooks configured, and none seen for the repository.
            fake.deliver_to(None, None)
            store.redis.delete(ci_events.seen_key(store.prefix, REPO))
            calls, lag = watch_once(fake, store, f"{2 * n:040x}", webhook=False, scale=scale)
            polled.append(calls)
            lags["polling"].append(lag)
            # Webhooks: the repository's CI sent one before (the base branch's, say).
            fake.deliver_to(url, secret)
            fake.complete_checks(REPO, "f" * 40, "success")
            deadline = time.monotonic() + 30
            while not ci_events.webhooks_seen(store.redis, store.prefix, REPO):
                if time.monotonic() > deadline:
                    raise RuntimeError("the bot never took the CI webhook")
                time.sleep(0.01)
            calls, lag = watch_once(fake, store, f"{2 * n + 1:040x}", webhook=True, scale=scale)
            hooked.append(calls)
            lags["webhook"].append(lag)
    figure = Figure(
        name="forge API calls per run's CI watch, with CI webhooks",
        unit="calls",
        samples=hooked,
        how=(
            "a run's CI watch (`poll_ci` with the webhook waiter, as the watch_ci step runs "
            "it) through PyGithub against the fake GitHub, CI finishing after 5 minutes "
            "with the default 15 s poll (time scaled down); with webhooks, the fake's "
            "signed `check_suite` goes to the bot's receiver over HTTP and the worker's "
            "handler wakes the watch; API requests the fake served, per watch"
        ),
        target=Target("ratio", 0.5, "≤ 0.5x polling"),
        baseline=polled,
        baseline_label="the same watch polling, no webhooks (alternated watch by watch)",
        paired_ratios=[h / p for h, p in zip(hooked, polled, strict=True)],
        decimals=0,
    )
    details = (
        f"Time scaled 1:{1 / scale:g}; the seconds below are unscaled.\n\n"
        "| watch | API calls (median) | CI finished → watch ended (median) |\n"
        "|---|---|---|\n"
        f"| polling every {POLL_SECONDS:g} s | {statistics.median(polled):.0f} "
        f"| {statistics.median(lags['polling']):.1f} s |\n"
        f"| CI webhook, fallback poll every "
        f"{POLL_SECONDS * ci_events.WEBHOOK_POLL_FACTOR:g} s "
        f"| {statistics.median(hooked):.0f} | {statistics.median(lags['webhook']):.1f} s |"
    )
    return Result([figure], details=details)
