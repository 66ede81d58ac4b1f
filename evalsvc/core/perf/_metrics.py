"""Metric definitions (SPEC §4) and the running aggregate of a run.

Per-request work is O(1) plus one C-level extend for the request's chunk gaps; nothing is recomputed
over the history of the run. Aggregates from several client processes merge exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._slo import SloTracker
from ._stats import Dist
from ._verdict import ClientLoad
from ._kinds import FailureKind
from ._sender import Outcome

if TYPE_CHECKING:
    from ._sessions import SessionStats

DISTS = ("ttft_ms", "tpot_ms", "itl_ms", "latency_ms", "latency_to_last_token_ms", "connect_ms", "output_tokens",
         "input_tokens")
CLIENT_DISTS = ("send_lag_ms", "latency_from_scheduled_ms", "loop_lag_ms")


def ttft_ms(o: Outcome) -> float | None:
    """First output-carrying chunk − t_sent (non-streaming: the whole latency)."""
    return None if o.first is None else (o.first - o.sent) * 1000.0


def latency_ms(o: Outcome) -> float | None:
    """Last byte − t_sent."""
    return None if o.end is None else (o.end - o.sent) * 1000.0


def latency_to_last_token_ms(o: Outcome) -> float | None:
    """Last output-carrying chunk − t_sent (vLLM's and AIPerf's "latency"; non-streaming: = latency)."""
    return None if o.last is None else (o.last - o.sent) * 1000.0


def connect_ms(o: Outcome) -> float | None:
    """Time spent opening a connection for the request (TCP, TLS, proxy); None when it reused one."""
    return None if o.connect is None else o.connect * 1000.0


def tpot_ms(o: Outcome) -> float | None:
    """(t_last_token − t_first_token) / (output_tokens − 1).

    Undefined (None, never 0) below two tokens and for an answer that was not read as a stream: a
    non-streamed request, or a streamed one the server answered with one JSON body.
    """
    if not o.streamed or o.first is None or o.last is None or o.output_tokens < 2:
        return None
    return (o.last - o.first) * 1000.0 / (o.output_tokens - 1)


class RunStats:
    """Everything measured in one run (or one client process's share of it)."""

    def __init__(self, streamed: bool, slo: dict[str, float] | None = None) -> None:
        self.streamed = streamed
        self.slo = SloTracker(slo)
        self.load = ClientLoad()
        self.requests = 0
        self.succeeded = 0
        self.failures: dict[str, int] = {}
        self.first_sent = float("inf")
        self.last_end = float("-inf")
        self.last_sent = float("-inf")
        self.output_tokens_total = 0
        self.input_tokens_total = 0
        self.usage_reported = 0
        self.unfinished = 0
        self.not_streamed = 0  # successes of a streamed run that the server answered with one body
        self.dists: dict[str, Dist] = {name: Dist() for name in DISTS + CLIENT_DISTS}
        self.sessions: SessionStats | None = None  # multi_turn runs: per-turn and per-session figures

    def add(self, o: Outcome) -> None:
        if o.kind == FailureKind.CANCELLED:
            # in flight when the run was stopped (duration cap, interrupt): neither a success nor a
            # server failure, so it is reported apart and kept out of every other figure
            self.unfinished += 1
            return
        self.requests += 1
        if o.sent < self.first_sent:
            self.first_sent = o.sent
        if o.sent > self.last_sent:
            self.last_sent = o.sent
        if o.end is not None and o.end > self.last_end:
            self.last_end = o.end
        d = self.dists
        self.load.add(o.sent, o.end)
        c = connect_ms(o)
        if c is not None:
            d["connect_ms"].add(c)
        if o.scheduled is not None:
            d["send_lag_ms"].add((o.sent - o.scheduled) * 1000.0)
        if o.kind is not None:
            self.failures[o.kind] = self.failures.get(o.kind, 0) + 1
            return
        self.succeeded += 1
        self.output_tokens_total += o.output_tokens
        self.input_tokens_total += o.prompt_tokens
        if o.usage:
            self.usage_reported += 1
        if self.streamed and not o.streamed:
            self.not_streamed += 1
        t = ttft_ms(o)
        if t is not None:
            d["ttft_ms"].add(t)
        lat = latency_ms(o)
        if lat is not None:
            d["latency_ms"].add(lat)
            if o.scheduled is not None and o.end is not None:
                d["latency_from_scheduled_ms"].add((o.end - o.scheduled) * 1000.0)
        last = latency_to_last_token_ms(o)
        if last is not None:
            d["latency_to_last_token_ms"].add(last)
        tp = tpot_ms(o)
        if tp is not None:
            d["tpot_ms"].add(tp)
        if o.gaps:
            d["itl_ms"].extend(o.gaps)  # already in ms
        if o.zero_gaps:
            d["itl_ms"].add_zeros(o.zero_gaps)
        d["output_tokens"].add(o.output_tokens)
        d["input_tokens"].add(o.prompt_tokens)
        if self.slo.active:
            self.slo.add(t, tp, lat)

    def merge(self, other: RunStats) -> None:
        self.requests += other.requests
        self.succeeded += other.succeeded
        for kind, n in other.failures.items():
            self.failures[kind] = self.failures.get(kind, 0) + n
        self.first_sent = min(self.first_sent, other.first_sent)
        self.last_end = max(self.last_end, other.last_end)
        self.last_sent = max(self.last_sent, other.last_sent)
        self.output_tokens_total += other.output_tokens_total
        self.input_tokens_total += other.input_tokens_total
        self.usage_reported += other.usage_reported
        self.unfinished += other.unfinished
        self.not_streamed += other.not_streamed
        for name, dist in other.dists.items():
            self.dists[name].merge(dist)
        self.slo.merge(other.slo)
        self.load.merge(other.load)
        if other.sessions is not None:
            if self.sessions is None:
                from ._sessions import SessionStats

                self.sessions = SessionStats()
            self.sessions.merge(other.sessions)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def duration_s(self) -> float | None:
        if self.requests == 0 or self.last_end < self.first_sent:
            return None
        return self.last_end - self.first_sent

    def metrics(self, duration_s: float | None = None) -> dict[str, Any]:
        """The flat metrics block of SPEC §4 (null where there is no data). `duration_s` replaces the
        measured span (first send to last completion), e.g. by the sum of the spans of repeated runs."""
        dur = self.duration_s() if duration_s is None else duration_s

        def per_s(x: float) -> float | None:
            return x / dur if dur else None

        d = self.dists
        slo = self.slo.metrics(self.requests, dur)
        if self.succeeded == 0:
            source = None
        elif self.usage_reported == self.succeeded:
            source = "usage"
        elif self.usage_reported == 0:
            source = "counted" if self.streamed else "estimated"
        else:
            source = "mixed"
        out = {
            "requests_total": self.requests,
            "requests_succeeded": self.succeeded,
            "requests_failed": self.failed,
            "failures_by_kind": dict(sorted(self.failures.items())),
            "requests_unfinished": self.unfinished,
            "send_rate": (self.requests - 1) / (self.last_sent - self.first_sent)
            if self.requests > 1 and self.last_sent > self.first_sent else None,
            "success_rate": self.succeeded / self.requests if self.requests else None,
            "duration_s": dur,
            "request_throughput": per_s(self.succeeded),
            "output_throughput": per_s(self.output_tokens_total),
            "total_throughput": per_s(self.output_tokens_total + self.input_tokens_total),
            "output_tokens_total": self.output_tokens_total,
            "input_tokens_total": self.input_tokens_total,
            "ttft_ms_mean": d["ttft_ms"].mean,
            "ttft_ms_p50": d["ttft_ms"].percentile(50),
            "ttft_ms_p99": d["ttft_ms"].percentile(99),
            "tpot_ms_mean": d["tpot_ms"].mean,
            "tpot_ms_p50": d["tpot_ms"].percentile(50),
            "itl_ms_mean": d["itl_ms"].mean,
            "latency_ms_mean": d["latency_ms"].mean,
            "latency_ms_p50": d["latency_ms"].percentile(50),
            "latency_ms_p99": d["latency_ms"].percentile(99),
            "latency_to_last_token_ms_mean": d["latency_to_last_token_ms"].mean,
            "latency_to_last_token_ms_p50": d["latency_to_last_token_ms"].percentile(50),
            "latency_to_last_token_ms_p99": d["latency_to_last_token_ms"].percentile(99),
            "connect_ms_mean": d["connect_ms"].mean,
            "connect_ms_p99": d["connect_ms"].percentile(99),
            "connections_opened": d["connect_ms"].count,
            "output_tokens_mean": d["output_tokens"].mean,
            "input_tokens_mean": d["input_tokens"].mean,
            "output_tokens_source": source,
            "responses_not_streamed": self.not_streamed if self.streamed else None,
            "send_lag_ms_p50": d["send_lag_ms"].percentile(50),
            "send_lag_ms_p99": d["send_lag_ms"].percentile(99),
            "loop_lag_ms_p99": d["loop_lag_ms"].percentile(99),
            **slo,
        }
        if self.sessions is not None:
            out.update(self.sessions.metrics())
        return out

    def percentiles(self) -> dict[str, dict[str, Any]]:
        out = {name: self.dists[name].summary() for name in DISTS + CLIENT_DISTS}
        if self.sessions is not None:
            out.update(self.sessions.percentiles())
        return out
