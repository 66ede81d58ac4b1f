"""`duration` bounds a perf run as a whole, warm-up included (issue 9.4)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from evalsvc import PerfConfig, run_perf_async


@pytest.mark.parametrize("workers", [1, 2])
def test_duration_bounds_the_warmup_too(mock_factory: Any, tmp_path: Path, workers: int) -> None:
    # 20000 warm-up requests of ~100 ms, two at a time, would take ~1000 s; duration=1 must end the run.
    mock = mock_factory(ttft_ms=100, itl_ms=0, output_tokens=4)
    config = PerfConfig(model="mock-model", url=mock.chat_url, dataset="random", prompt_tokens=8, max_tokens=4,
                        number=50, parallel=2, warmup=20000, duration=1.0, workers=workers,
                        work_dir=str(tmp_path))
    started = time.monotonic()
    result = asyncio.run(asyncio.wait_for(run_perf_async(config), timeout=60))
    elapsed = time.monotonic() - started
    assert elapsed < 30, elapsed  # seconds of setup at most, not the warm-up's ~1000 s
    (run,) = result.results.values()
    metrics = run.to_dict()["metrics"]
    assert metrics["stopped_by"] == "duration"
    assert metrics["requests_succeeded"] < 10  # the warm-up used (nearly) the whole second


def test_a_short_warmup_leaves_the_rest_of_the_duration_to_the_measured_run(mock_factory: Any,
                                                                             tmp_path: Path) -> None:
    mock = mock_factory(ttft_ms=20, itl_ms=0, output_tokens=4)
    config = PerfConfig(model="mock-model", url=mock.chat_url, dataset="random", prompt_tokens=8, max_tokens=4,
                        number=100000, parallel=4, warmup=4, duration=2.0, work_dir=str(tmp_path))
    result = asyncio.run(asyncio.wait_for(run_perf_async(config), timeout=60))
    (run,) = result.results.values()
    metrics = run.to_dict()["metrics"]
    assert metrics["stopped_by"] == "duration" and metrics["requests_succeeded"] > 0
