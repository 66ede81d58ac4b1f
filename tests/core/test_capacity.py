"""run_capacity against the simulated server with finite capacity: the known answer, the outputs, early stop,
client-bound probes, and the config's bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalsvc.core.capacity import CapacityResult, run_capacity
from evalsvc.core.config import CapacityConfig
from evalsvc.core.errors import ConfigError
from tests._servers import MockHandle, start_mock

SLO = {"ttft_ms": 360}


@pytest.fixture(scope="module")
def finite() -> Iterator[MockHandle]:
    """The issue's server (`--max-batch 16 --ttft-ms 100 --itl-ms 10 --output-tokens 32`, SLO 120 ms) slowed
    three times, SLO included: 16 slots, a request holds one for 300 + 31 x 30 = 1230 ms, a 17th client
    waits 1230 / 16 = 77 ms on average (> the 60 ms of headroom) or a whole slot time in waves. The answer is
    16 as in the issue; the 60 ms headroom (not 20) keeps a loaded test machine's stalls from moving it.
    benchmarks/capacity_search.py runs the issue's own figures."""
    with start_mock(max_batch=16, ttft_ms=300, itl_ms=30, output_tokens=32) as server:
        yield server


@pytest.fixture(scope="module")
def quick() -> Iterator[MockHandle]:
    """16 slots held 27 ms each: fast probes, far from any SLO used with it but the one it misses."""
    with start_mock(max_batch=16, ttft_ms=20, itl_ms=1, output_tokens=8) as server:
        yield server


def capacity_config(url: str, tmp_path: Path, **kw: Any) -> CapacityConfig:
    base: dict[str, Any] = dict(model="mock-model", url=url, dataset="random", prompt_tokens=8, max_tokens=32,
                                slo=SLO, work_dir=str(tmp_path), preflight=False)
    base.update(kw)
    return CapacityConfig(**base)


def test_parallel_search_answers_the_slot_count(finite: MockHandle, tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    # max_repeats=1 keeps it fast: the marginal probe (17) is then decided by one run's estimate
    result = run_capacity(capacity_config(finite.chat_url, tmp_path, low=8, high=32, max_repeats=1),
                          progress=events.append)
    assert isinstance(result, CapacityResult) and result.status == "completed", result.capacity
    cap = result.capacity
    assert result.value == 16 and cap["value"] == 16 and cap["ended"] == "converged"
    assert cap["last_pass"]["value"] == 16 and cap["last_pass"]["verdict"] == "pass"
    assert cap["last_pass"]["decided_by"] == "interval" and cap["last_pass"]["interval"][0] >= 0.95
    assert cap["first_fail"]["value"] == 17 and cap["first_fail"]["attainment"] < 0.95
    assert cap["unit"] == "concurrent requests" and cap["target"] == 0.95 and cap["slo"] == {"ttft_ms": 360.0}
    # goodput at capacity is the passing probe's own: every request met the SLO there
    at16 = result.results[cap["last_pass"]["runs"][-1]].metrics
    assert cap["goodput"] == at16["goodput"] and at16["slo_attainment"] == 1.0
    assert at16["ttft_ms_p99"] < 360
    # far above capacity a probe is cut short as soon as it cannot pass
    stopped = [k for k, r in result.results.items() if r.metrics["stopped_by"] == "slo_missed"]
    assert stopped and all(result.results[k].metrics["requests_total"] < result.results[k].metrics["number"]
                           for k in stopped)
    # every probe judged, in order, with events while searching
    probes = [e for e in events if e["type"] == "probe"]
    assert [p["value"] for p in probes] == [p["value"] for p in cap["probes"]]
    assert {e["type"] for e in events} >= {"status", "progress", "run_done", "probe"}
    assert cap["probe_runs"] == len(result.results) <= 9

    out = Path(result.output_dir)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["capacity"]["value"] == 16 and set(summary["results"]) == set(result.results)
    for key in result.results:
        assert (out / f"summary_{key}.json").is_file() and (out / f"requests_{key}.jsonl").is_file()
    page = (out / "report.html").read_text()
    assert 'id="capacity"' in page and "capacity: 16 concurrent requests" in page
    assert "chart-capacity-attainment" in page and "chart-capacity-slo" in page
    text = (out / "report.txt").read_text()
    assert "parallel_16_number_100" in text and "capacity: 16" in text
    (out / "report.html").unlink()  # `evalsvc report DIR` rebuilds it, capacity section included
    from evalsvc.core.report import build_report

    assert 'id="capacity"' in build_report(out).read_text()


def test_the_range_edges_are_reported_as_such(quick: MockHandle, finite: MockHandle, tmp_path: Path) -> None:
    result = run_capacity(capacity_config(quick.chat_url, tmp_path, low=2, high=4))
    assert result.status == "completed" and result.capacity["ended"] == "above_range"
    assert result.value == 4 and "at least" in result.capacity["message"]
    missed = run_capacity(capacity_config(finite.chat_url, tmp_path, slo={"ttft_ms": 10}, low=32, high=64))
    assert missed.capacity["ended"] == "below_range" and missed.value is None
    assert "no capacity in the range" in missed.capacity["message"]
    (only,) = missed.results.values()  # one scout of 64 requests, stopped once it could no longer pass
    assert only.metrics["stopped_by"] == "slo_missed" and only.metrics["requests_total"] < 64


def test_client_bound_probe_is_never_the_answer(quick: MockHandle, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from evalsvc.core.perf import _run

    real = _run.client_verdict

    def bound_with_one_worker(metrics: Any, load: Any, lag: Any, parallel: int, rate: float,
                              workers: int) -> dict[str, Any]:
        out = real(metrics, load, lag, parallel, rate, workers)
        if workers == 1 and parallel >= 4:
            out.update(client_bound=True, client_bound_reasons=["a client process was busy 99% of the time"])
        return out

    monkeypatch.setattr(_run, "client_verdict", bound_with_one_worker)
    monkeypatch.setattr("evalsvc.core.capacity._run.os.cpu_count", lambda: 1)
    stuck = run_capacity(capacity_config(quick.chat_url, tmp_path, low=2, high=8))
    assert stuck.status == "failed" and stuck.value is None and stuck.capacity["ended"] == "client_bound"
    assert "client-bound" in stuck.capacity["message"] and "no capacity is reported" in (stuck.error or "")
    assert stuck.capacity["last_pass"]["value"] == 2  # what was proven stays visible, not reported as capacity

    # with cores to spare, the probe is run again with more client processes, and then it counts
    monkeypatch.setattr("evalsvc.core.capacity._run.os.cpu_count", lambda: 2)
    raised = run_capacity(capacity_config(quick.chat_url, tmp_path, low=2, high=4))
    assert raised.status == "completed" and raised.value == 4 and raised.capacity["workers"] == 2
    assert raised.capacity["workers_raised"][0]["probe"] == "parallel_4_number_10"
    assert "parallel_4_number_10_run2" in raised.results
    assert raised.results["parallel_4_number_10_run2"].metrics["client_bound"] is False


@pytest.mark.parametrize(("changes", "field", "needle"), [
    ({"slo": {}}, "slo", "at least one threshold"),
    ({"slo": None}, "slo", "is required"),
    ({"attainment": 0}, "attainment", "> 0"),
    ({"attainment": 1.01}, "attainment", "<= 1"),
    ({"low": 32, "high": 8}, "high", "inverted"),
    ({"search": "rate", "low": 50.0}, "high", "inverted"),  # the default high (256) is below 50? no: see below
    ({"low": 2.5}, "low", "whole number"),
    ({"rate": 5}, "rate", "must be -1"),
    ({"num_runs": 3}, "num_runs", "must be 1, got 3"),
    ({"search": "sideways"}, "search", "parallel, rate"),
])
def test_bad_input_names_the_field(tmp_path: Path, changes: dict[str, Any], field: str, needle: str) -> None:
    if changes.get("low") == 50.0:
        changes = {"search": "rate", "low": 500.0}
    with pytest.raises(ConfigError) as info:
        capacity_config("http://127.0.0.1:9/v1/chat/completions", tmp_path, **changes)
    assert info.value.field == field and needle in info.value.reason


def test_probe_config_keeps_every_perf_field(tmp_path: Path) -> None:
    config = capacity_config("http://127.0.0.1:9/v1/chat/completions", tmp_path, headers={"X-A": "b"},
                             api_key="sk-secret", warmup=3)
    probe = config.perf_config(number=40, parallel=7)
    assert (probe.number, probe.parallel, probe.warmup, probe.api_key) == (40, 7, 3, "sk-secret")
    assert probe.headers == {"X-A": "b"} and probe.slo == {"ttft_ms": 360.0}
    assert "sk-secret" not in repr(config) and config.to_dict()["api_key"] == "***"
