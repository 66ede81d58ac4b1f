"""/metrics: the service in Prometheus text format (prometheus-client), one registry per app.

    evalsvc_jobs{kind,state}                        jobs in the store, by kind and state (gauge)
    evalsvc_queue_depth / evalsvc_queue_capacity    jobs waiting for a slot / allowed to wait (gauges)
    evalsvc_jobs_running{kind}                      jobs running now (gauge)
    evalsvc_job_duration_seconds{kind,state}        start to end of each job that ran, observed as it ends (histogram)
    evalsvc_http_requests_total{method,route,status}             answered requests by route template (counter)
    evalsvc_http_request_duration_seconds{method,route}          time to answer, incl. streams (histogram)
    evalsvc_perf_requests_done{job_id,run}          a running perf job's sweep point: requests finished so far
    evalsvc_perf_requests_failed{job_id,run}        ... of which failed
    evalsvc_perf_requests_planned{job_id,run}       ... of the point's total
    evalsvc_perf_request_rate{job_id,run}           ... its current request rate (requests/s)

The perf gauges come from the job's latest progress event (the same events /api/v1/jobs/{id}/events
streams) and exist only while the job runs.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..core.jobs import KINDS, RUNNING, STATES, Job, JobRunner

__all__ = ["CONTENT_TYPE", "ServiceMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The text format every Prometheus version reads (what generate_latest writes)."""

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
JOB_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0)


def _instant(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class ServiceMetrics:
    """The app's registry: request counters fed by the Observe middleware, job durations fed by the
    runner's listener, and gauges read from the runner when scraped."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("evalsvc_http_requests", "HTTP requests answered, by route template and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("evalsvc_http_request_duration_seconds",
                                 "Time to answer an HTTP request (a stream: until it ends)", ["method", "route"],
                                 buckets=HTTP_BUCKETS, registry=self.registry)
        self.job_duration = Histogram("evalsvc_job_duration_seconds", "Start to end of each job that ran",
                                      ["kind", "state"], buckets=JOB_BUCKETS, registry=self.registry)
        self._counts: list[tuple[str, str, int]] = []
        self.registry.register(_Gauges(self))
        runner.listeners.append(self.on_job)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def on_job(self, change: str, job: Job) -> None:
        if change != "end":
            return
        started, finished = _instant(job.started_at), _instant(job.finished_at)
        if started is not None and finished is not None:
            self.job_duration.labels(job.kind, str(job.state)).observe(max(0.0, (finished - started).total_seconds()))

    async def render(self) -> bytes:
        """The exposition text (job counts read from the store first, off the loop)."""
        self._counts = await self.runner.counts() if self.runner.started else []
        return generate_latest(self.registry)


class _Gauges(Collector):
    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        runner = self.metrics.runner
        jobs = GaugeMetricFamily("evalsvc_jobs", "Jobs in the store, by kind and state", labels=["kind", "state"])
        counts = {(kind, state): n for kind, state, n in self.metrics._counts}
        for kind in KINDS:
            for state in STATES:
                jobs.add_metric([kind, str(state)], counts.get((kind, str(state)), 0))
        yield jobs
        stats = runner.stats()
        yield GaugeMetricFamily("evalsvc_queue_depth", "Jobs waiting for a slot", value=stats["queued"])
        yield GaugeMetricFamily("evalsvc_queue_capacity", "Jobs allowed to wait (--max-queue)",
                                value=stats["max_queued"])
        running = GaugeMetricFamily("evalsvc_jobs_running", "Jobs running now", labels=["kind"])
        for kind in KINDS:
            running.add_metric([kind], stats["running_by_kind"].get(kind, 0))
        yield running
        yield from _perf_progress(runner.running_jobs())


_PERF_GAUGES = (("done", "evalsvc_perf_requests_done", "A running perf job's sweep point: requests finished"),
                ("failed", "evalsvc_perf_requests_failed", "A running perf job's sweep point: requests failed"),
                ("total", "evalsvc_perf_requests_planned", "A running perf job's sweep point: requests planned"),
                ("rps", "evalsvc_perf_request_rate", "A running perf job's sweep point: current requests/s"))


def _perf_progress(jobs: list[Job]) -> Iterator[Metric]:
    families = {key: GaugeMetricFamily(name, text, labels=["job_id", "run"]) for key, name, text in _PERF_GAUGES}
    for job in jobs:
        if job.kind != "perf" or job.state != RUNNING:
            continue
        for part, event in list(job.progress.items()):
            for key, family in families.items():
                value: Any = event.get(key)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    family.add_metric([job.id, part], float(value))
    yield from families.values()
