"""The client-bound verdict: its rules on synthetic figures, and over HTTP a saturated client (a very high
rate on one core) is flagged while a comfortable run is not."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from evalsvc import PerfConfig, run_perf
from evalsvc.core.perf._stats import Dist
from evalsvc.core.perf._verdict import (CPU_BUSY_SHARE, LOOP_LAG_P90_MS, MIN_LOOP_SAMPLES, SEND_LAG_P99_MS,
                                        ClientLoad, client_verdict)


def load(in_flight_s: float = 0.0, share: float | None = None) -> ClientLoad:
    out = ClientLoad()
    out.in_flight_s = in_flight_s
    out.busy_share = share
    return out


def lag(values: list[float]) -> Dist:
    d = Dist()
    for v in values:
        d.add(v)
    return d


QUIET = lag([0.5] * 40)


def verdict(send_lag_p99: float | None = None, *, loop: Dist = QUIET, in_flight_s: float = 10.0,
            share: float | None = 0.2, parallel: int = 100, rate: float = 500.0) -> dict[str, Any]:
    metrics = {"send_lag_ms_p99": send_lag_p99, "duration_s": 2.0}
    return client_verdict(metrics, load(in_flight_s, share), loop, parallel, rate, workers=1)


def test_comfortable_figures_are_not_flagged() -> None:
    v = verdict(send_lag_p99=2.0)
    assert v["client_bound"] is False and v["client_bound_reasons"] == [] and v["send_lag_cause"] is None
    assert v["mean_in_flight"] == pytest.approx(5.0)  # 10 s in flight over 2 s


def test_late_sends_with_the_cap_not_reached_are_the_client() -> None:
    v = verdict(send_lag_p99=SEND_LAG_P99_MS + 5, in_flight_s=40.0)  # mean 20 in flight of 100
    assert v["client_bound"] is True and v["send_lag_cause"] == "client"
    assert v["client_bound_reasons"][0].startswith("send lag p99 30 ms > 25 ms")
    assert "--workers" in v["client_bound_reasons"][-1]  # the remedy comes last


def test_late_sends_with_the_cap_full_are_the_server() -> None:
    v = verdict(send_lag_p99=500.0, in_flight_s=190.0)  # mean 95 in flight of 100: the cap held them
    assert v["client_bound"] is False and v["send_lag_cause"] == "parallel_cap"


def test_closed_loop_uses_loop_lag_only() -> None:
    busy = lag([LOOP_LAG_P90_MS + 30] * MIN_LOOP_SAMPLES)
    v = verdict(None, loop=busy, rate=-1)
    assert v["client_bound"] is True and v["client_bound_reasons"][0].startswith("event-loop lag p90 80 ms")
    assert "other processes" in v["client_bound_reasons"][0]  # the client itself used 20 % of a core
    assert verdict(None, loop=lag([LOOP_LAG_P90_MS + 30] * (MIN_LOOP_SAMPLES - 1)), rate=-1)["client_bound"] is False
    # a few stalls (a shared machine) stay under the 90th percentile
    assert verdict(None, loop=lag([0.5] * 36 + [400.0] * 3), rate=-1)["client_bound"] is False


def test_a_saturated_cpu_is_flagged() -> None:
    v = verdict(2.0, share=CPU_BUSY_SHARE + 0.05)
    assert v["client_bound"] is True and "busy 95% of the time" in v["client_bound_reasons"][0]
    assert verdict(2.0, share=None)["client_bound"] is False  # too short a window to judge


def test_cpu_share_merges_as_the_busiest_process() -> None:
    merged = ClientLoad()
    for share in (0.3, 0.97, 0.5):
        merged.merge(load(1.0, share))
    assert merged.share() == pytest.approx(0.97) and merged.in_flight_s == pytest.approx(3.0)


# -- over HTTP ----------------------------------------------------------------------------------------------

@pytest.fixture
def one_core() -> Any:
    """Pin this process to one core for the test (restored afterwards); yields the core."""
    before = os.sched_getaffinity(0)
    core = min(before)
    os.sched_setaffinity(0, {core})
    try:
        yield core
    finally:
        os.sched_setaffinity(0, before)


def cfg(url: str, tmp_path: Path, **kw: Any) -> PerfConfig:
    base: dict[str, Any] = dict(model="mock-model", url=url, dataset="random", prompt_tokens=8, max_tokens=64,
                                work_dir=str(tmp_path), record_requests=False)
    base.update(kw)
    return PerfConfig(**base)


@pytest.mark.timeout(120)
def test_a_saturated_client_is_flagged(mock_factory: Any, tmp_path: Path, one_core: int) -> None:
    mock = mock_factory(ttft_ms=0, itl_ms=0, output_tokens=4)
    others = os.sched_getaffinity(mock.process.pid) - {one_core}
    if others:  # the server gets the other cores: the client's core is the one that runs out
        os.sched_setaffinity(mock.process.pid, others)
    # 20,000 requests/s asked of one client process on one core: it falls behind its schedule
    result = run_perf(cfg(mock.chat_url, tmp_path, number=2500, parallel=2500, rate=20_000, arrival="constant"))
    (run,) = result.results.values()
    m = run.metrics
    assert m["requests_succeeded"] + m["requests_failed"] == 2500
    assert m["client_bound"] is True, m
    assert m["send_lag_cause"] == "client" and m["send_lag_ms_p99"] > SEND_LAG_P99_MS
    warning = [value for label, value in _summary(m) if label == "WARNING"]
    assert warning and "client-bound" in warning[0] and "--workers" in warning[0]


def test_a_comfortable_run_is_not_flagged(mock_factory: Any, tmp_path: Path) -> None:
    mock = mock_factory(ttft_ms=5, itl_ms=1, output_tokens=8)
    open_loop = run_perf(cfg(mock.chat_url, tmp_path, number=40, parallel=40, rate=40, arrival="constant"))
    closed_loop = run_perf(cfg(mock.chat_url, tmp_path, number=60, parallel=2))
    for result in (open_loop, closed_loop):
        (run,) = result.results.values()
        m = run.metrics
        assert m["requests_succeeded"] == m["requests_total"]
        assert m["client_bound"] is False and m["client_bound_reasons"] == [], m["client_bound_reasons"]
        assert not any(label == "WARNING" for label, _ in _summary(m))
    assert open_loop["rate_40_number_40"].metrics["send_lag_ms_p99"] < SEND_LAG_P99_MS
    labels = [label for label, _ in _summary(open_loop.results["rate_40_number_40"].metrics)]
    assert "send lag p99 (ms)" in labels and "event-loop lag p99 (ms)" in labels  # both shown to the user


def _summary(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    from evalsvc.core.perf._result import summary_lines

    return summary_lines(metrics)
