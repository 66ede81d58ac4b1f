"""`num_runs`: each point repeated, pooled, and the spread of its headline metrics (mean, stdev, t interval, CV)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from evalsvc import run_perf
from evalsvc.core.errors import ConfigError
from evalsvc.core.perf._repeats import spread, t975
from tests._perfrun import cfg
from tests._servers import start_mock

TTFT_MS = 60.0


def test_spread_matches_hand_computation() -> None:
    values = [10.0, 12.0, 11.0, 13.0, 9.0]
    out = spread(values)
    mean, sd = 11.0, math.sqrt(2.5)
    half = 2.776 * sd / math.sqrt(5)
    assert out["n"] == 5 and out["mean"] == pytest.approx(mean) and out["stdev"] == pytest.approx(sd)
    assert out["ci95_low"] == pytest.approx(mean - half) and out["ci95_high"] == pytest.approx(mean + half)
    assert out["cv"] == pytest.approx(sd / mean)
    assert spread([5.0]) == {"n": 1, "mean": 5.0, "stdev": None, "ci95_low": None, "ci95_high": None, "cv": None}
    assert spread([])["mean"] is None
    # beyond the table the expansion keeps to the known quantiles
    assert t975(40) == pytest.approx(2.0211, abs=2e-4) and t975(120) == pytest.approx(1.9799, abs=2e-4)


def test_num_runs_is_checked() -> None:
    with pytest.raises(ConfigError, match="num_runs"):
        cfg("http://127.0.0.1:9/v1/chat/completions", Path("."), num_runs=0)


@pytest.fixture(scope="module")
def mock() -> Any:
    with start_mock(ttft_ms=TTFT_MS, itl_ms=2, output_tokens=8) as server:
        yield server


def test_num_runs_interval_contains_the_injected_ttft(mock: Any, tmp_path: Path) -> None:
    result = run_perf(cfg(mock.chat_url, tmp_path, number=16, parallel=4, num_runs=5, max_tokens=8))
    assert result.status == "completed"
    run = result.results["parallel_4_number_16"]
    block = run.repeats
    assert block is not None and block["num_runs"] == 5 and block["runs_measured"] == 5
    assert len(block["runs"]) == 5 and all(r["requests_total"] == 16 for r in block["runs"])
    ttft = block["metrics"]["ttft_ms_mean"]
    assert ttft["n"] == 5
    # the server injects 60 ms; the client adds its own small delay to every request, so the mean sits just
    # above it; the t interval must contain the injected figure's neighbourhood and be tight
    assert ttft["ci95_low"] <= ttft["mean"] <= ttft["ci95_high"]
    assert ttft["ci95_low"] - 5.0 <= TTFT_MS <= ttft["ci95_high"] + 5.0
    assert TTFT_MS <= ttft["mean"] < TTFT_MS + 30
    assert ttft["cv"] is not None and ttft["cv"] < 0.2
    # the point pools every repeat: 5 x 16 requests, and every record in one file
    assert run.metrics["requests_total"] == 80 and run.metrics["requests_succeeded"] == 80
    assert run.percentiles["ttft_ms"]["count"] == 80
    out = Path(result.output_dir)
    assert len((out / "requests_parallel_4_number_16.jsonl").read_text().splitlines()) == 80
    assert not list(out.glob("requests_*.run*.jsonl"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"]["parallel_4_number_16"]["repeats"]["metrics"]["ttft_ms_mean"] == ttft
    # throughput is over the repeats' own durations: not deflated by the gaps between them
    per_run = block["metrics"]["request_throughput"]["mean"]
    assert run.metrics["request_throughput"] == pytest.approx(per_run, rel=0.25)


def test_single_run_has_no_repeats_block(mock: Any, tmp_path: Path) -> None:
    result = run_perf(cfg(mock.chat_url, tmp_path, number=8, parallel=2, max_tokens=8))
    assert "repeats" not in result.results["parallel_2_number_8"].to_dict()
