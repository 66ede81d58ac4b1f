"""SLOs and goodput: per-request counting on known timings, shard merging, and over HTTP with failures."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from evalsvc import run_perf
from evalsvc.core.perf._metrics import RunStats
from evalsvc.core.perf._sender import Outcome
from tests._perfrun import cfg

SLO = {"ttft_ms": 250, "tpot_ms": 50, "latency_ms": 350}


def outcome(sent: float, first: float | None, last: float | None, end: float, tokens: int,
            kind: str | None = None) -> Outcome:
    o = Outcome(0, None)
    o.sent, o.first, o.last, o.end, o.output_tokens, o.prompt_tokens, o.kind = sent, first, last, end, tokens, 5, kind
    o.usage = o.streamed = True  # read as a stream (a one-body answer has no TPOT)
    return o


KNOWN = [
    outcome(0.0, 0.2, 0.26, 0.27, 4),  # ttft 200, tpot 20, latency 270: meets all
    outcome(0.1, 0.4, 0.5, 0.5, 2),  # ttft 300, tpot 100, latency 400: meets none
    outcome(0.2, 0.3, 0.3, 0.3, 1),  # one token, no TPOT: ttft 100, latency 100: meets all
    outcome(0.3, None, None, 0.35, 0, kind="http_500"),  # failed: never meets
    outcome(0.3, 0.31, 0.5, 0.5, 20),  # ttft 10, tpot 10, latency 200... meets all
    outcome(0.35, 0.36, 0.36 + 99 * 0.06, 0.36 + 99 * 0.06, 100),  # tpot 60 and latency ~5950: ttft only
]


def test_goodput_and_attainment_on_known_timings() -> None:
    stats = RunStats(streamed=True, slo=SLO)
    for o in KNOWN:
        stats.add(o)
    m = stats.metrics()
    assert m["requests_meeting_slo"] == 3
    assert m["slo_attainment"] == pytest.approx(3 / 6)  # the failed request is in the denominator
    assert m["goodput"] == pytest.approx(3 / m["duration_s"])
    assert m["goodput"] == pytest.approx(m["request_throughput"] * 3 / 5)  # same duration as throughput
    assert m["slo_attainment_by_metric"] == pytest.approx({"ttft_ms": 4 / 6, "tpot_ms": 3 / 6, "latency_ms": 3 / 6})
    assert m["slo"] == {"ttft_ms": 250.0, "tpot_ms": 50.0, "latency_ms": 350.0}


def test_only_the_given_slos_apply() -> None:
    stats = RunStats(streamed=True, slo={"tpot_ms": 50})
    for o in KNOWN:
        stats.add(o)
    m = stats.metrics()
    assert m["requests_meeting_slo"] == 3  # tpot 20, none (one token), 10: requests 0, 2, 4
    assert list(m["slo_attainment_by_metric"]) == ["tpot_ms"]


def test_non_streamed_requests_have_ttft_equal_to_latency() -> None:
    stats = RunStats(streamed=False, slo={"ttft_ms": 280})
    stats.add(outcome(0.0, 0.27, 0.27, 0.27, 4))
    stats.add(outcome(0.0, 0.3, 0.3, 0.3, 4))
    assert stats.metrics()["requests_meeting_slo"] == 1


def test_without_slo_everything_is_null() -> None:
    stats = RunStats(streamed=True)
    for o in KNOWN:
        stats.add(o)
    m = stats.metrics()
    assert all(m[k] is None for k in ("slo", "goodput", "slo_attainment", "slo_attainment_by_metric",
                                      "requests_meeting_slo"))


def test_no_request_is_null_not_zero() -> None:
    m = RunStats(streamed=True, slo=SLO).metrics()
    assert m["goodput"] is None and m["slo_attainment"] is None and m["requests_meeting_slo"] == 0


def test_shards_merge_to_the_same_counts() -> None:
    whole = RunStats(streamed=True, slo=SLO)
    parts = [RunStats(streamed=True, slo=SLO), RunStats(streamed=True, slo=SLO)]
    for i, o in enumerate(KNOWN):
        whole.add(o)
        parts[i % 2].add(o)
    merged = RunStats(streamed=True, slo=SLO)
    for part in parts:
        merged.merge(pickle.loads(pickle.dumps(part)))  # as a client process sends it back
    keys = ("requests_meeting_slo", "slo_attainment", "goodput", "slo_attainment_by_metric")
    assert {k: merged.metrics()[k] for k in keys} == {k: whole.metrics()[k] for k in keys}


# -- over HTTP --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def quarter_failing() -> Any:
    """TTFT 20 ms; exactly one request in four answered 500."""
    from tests._servers import start_mock

    with start_mock(ttft_ms=20, itl_ms=1, output_tokens=8, fault_cycle=4, error_500=0.25) as mock:
        yield mock


@pytest.mark.parametrize("workers", [1, 2])
def test_failed_requests_do_not_meet_the_slo(quarter_failing: Any, tmp_path: Path, workers: int) -> None:
    quarter_failing.reset()
    result = run_perf(cfg(quarter_failing.chat_url, tmp_path, slo={"ttft_ms": 10_000, "latency_ms": 10_000},
                          workers=workers))
    (run,) = result.results.values()
    m = run.metrics
    assert m["requests_failed"] == 5
    assert m["requests_meeting_slo"] == 15 and m["slo_attainment"] == pytest.approx(0.75)
    assert m["goodput"] == pytest.approx(m["request_throughput"])  # every success met the generous SLO
    assert "SLO attainment" in result.report() and "goodput" in result.report()


def test_an_slo_below_the_injected_ttft_is_never_met(quarter_failing: Any, tmp_path: Path) -> None:
    result = run_perf(cfg(quarter_failing.chat_url, tmp_path, slo={"ttft_ms": 15}))
    (run,) = result.results.values()
    m = run.metrics
    assert m["requests_succeeded"] == 15
    assert m["requests_meeting_slo"] == 0 and m["slo_attainment"] == 0.0 and m["goodput"] == 0.0
    assert m["slo_attainment_by_metric"] == {"ttft_ms": 0.0}
