"""Prometheus metrics, read from Redis when scraped.

Nothing is counted in this process: the run store's indexes, RQ's queues and registries
and the fleet totals (:mod:`runs.counters`) already hold the numbers, shared by every
bot and worker. So any one process can serve ``/metrics`` for the whole fleet, and a
restart loses nothing. Each registry is our own (``CollectorRegistry``), never
``prometheus_client``'s global one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import redis
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from rq import Queue, Worker

from process.endpoints import Wsgi
from runs.counters import Counters
from runs.record import RunStatus
from runs.store import RunStore

log = logging.getLogger(__name__)

#: RQ job states reported per queue, each read with a single ZCARD or LLEN.
QUEUE_STATES = ("queued", "started", "failed", "deferred", "scheduled")


class FleetCollector(Collector):
    """Reads runs, queues and totals at scrape time. ``queues`` are the RQ queue names
    always reported (the configured one); any other queue RQ knows is added."""

    def __init__(self, store: RunStore, queues: Iterable[str]) -> None:
        self.store = store
        self.queues = list(queues)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("agents_redis_up", "1 if Redis answered this scrape, else 0")
        try:
            families = [*self._runs(), *self._queues(), *self._totals()]
        except redis.RedisError as exc:
            log.warning("metrics: Redis unreachable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _runs(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily(
            "agents_runs", "Runs kept in the store, by status", labels=["status"]
        )
        for status in RunStatus:
            runs.add_metric([status.value], self.store.count_by_status(status))
        yield runs
        created = CounterMetricFamily("agents_runs_created", "Runs created in this store")
        created.add_metric([], self.store.count_created())
        yield created

    def _queue_names(self) -> list[str]:
        names = list(self.queues)
        for queue in Queue.all(connection=self.store.redis):
            if queue.name not in names:
                names.append(queue.name)
        return names

    def _queues(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "agents_queue_jobs", "RQ jobs per queue and state", labels=["queue", "state"]
        )
        workers = GaugeMetricFamily(
            "agents_workers", "RQ workers listening on each queue", labels=["queue"]
        )
        for name in self._queue_names():
            queue = Queue(name, connection=self.store.redis)
            registries = {
                "started": queue.started_job_registry,
                "failed": queue.failed_job_registry,
                "deferred": queue.deferred_job_registry,
                "scheduled": queue.scheduled_job_registry,
            }
            jobs.add_metric([name, "queued"], queue.count)
            for state, registry in registries.items():
                # No cleanup: a scrape only reads.
                jobs.add_metric([name, state], registry.get_job_count(cleanup=False))
            workers.add_metric([name], Worker.count(queue=queue))
        yield jobs
        yield workers

    def _totals(self) -> Iterator[Metric]:
        totals = Counters(self.store.redis, prefix=self.store.prefix).read()
        tokens = CounterMetricFamily(
            "agents_tokens", "Model tokens used by all runs, by kind", labels=["kind"]
        )
        for kind, amount in totals.tokens.items():
            tokens.add_metric([kind], amount)
        yield tokens
        dollars = CounterMetricFamily("agents_cost_dollars", "US dollars spent on the model")
        dollars.add_metric([], totals.dollars)
        yield dollars
        steps = HistogramMetricFamily(
            "agents_step_duration_seconds",
            "Seconds each blueprint step took, by step and outcome (done or failed)",
            labels=["step", "outcome"],
        )
        for series in totals.steps:
            buckets = [
                ("+Inf" if bound == float("inf") else repr(bound), count)
                for bound, count in series.buckets
            ]
            steps.add_metric([series.step, series.outcome], buckets, series.total_seconds)
        yield steps


def registry(store: RunStore, queues: Iterable[str]) -> CollectorRegistry:
    """A registry of our own holding only the fleet collector."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(FleetCollector(store, queues))
    return reg


def metrics_app(store: RunStore, queues: Iterable[str]) -> Wsgi:
    """The ``/metrics`` WSGI app (``prometheus_client`` writes the exposition format)."""
    app: Wsgi = make_wsgi_app(registry(store, queues))
    return app
