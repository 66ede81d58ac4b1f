"""Realistic workloads against the simulated endpoint: a 2,000-request Mooncake trace replayed at its own times
(and twice as fast), shared prefixes measured through the mock's prefix cache against its TTFT model, and the
new options' request bodies as the server received them."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import httpx
import pytest

from evalsvc import run_perf
from tests._perfrun import cfg, mooncake_trace, only, records
from tests._servers import MockHandle


def captured(mock: MockHandle) -> list[dict[str, Any]]:
    got = httpx.get(mock.root_url + "/mock/requests", trust_env=False, timeout=30)
    assert got.status_code == 200, got.text
    return got.json()  # type: ignore[no-any-return]


def test_a_2000_request_mooncake_trace_is_replayed_at_its_times(mock_factory: Any, tmp_path: Path) -> None:
    mock = mock_factory(ttft_ms=0, itl_ms=0, output_tokens=64, capture_requests=True)
    rows = mooncake_trace(tmp_path / "trace.jsonl")
    config = cfg(mock.chat_url, tmp_path, dataset="trace", dataset_path=str(tmp_path / "trace.jsonl"), number=None,
                 parallel=512, ignore_eos=True)
    result = run_perf(config)
    key = "trace_speed_1_parallel_512_number_2000"  # number defaults to the trace's length
    assert list(result.results) == [key]
    m = only(result)["metrics"]
    assert m["requests_total"] == m["requests_succeeded"] == 2000
    assert m["arrival"] == "trace" and m["speed"] == 1.0
    span_s = rows[-1]["timestamp"] / 1000
    assert m["trace_span_s"] == pytest.approx(span_s) and m["rate"] == pytest.approx(1999 / span_s, rel=1e-6)
    recs = sorted(records(result), key=lambda r: r["index"])
    assert [r["trace_index"] for r in recs] == list(range(2000))
    assert [r["trace_timestamp_ms"] for r in recs] == [float(r["timestamp"]) for r in rows]
    assert [r["scheduled_ms"] for r in recs] == [pytest.approx(r["timestamp"], abs=2e-3) for r in rows]
    assert all(r["sent_ms"] >= r["scheduled_ms"] - 0.5 for r in recs)  # the engine sends within 0.5 ms of due
    # outputs forced to the trace's lengths: the server generated exactly output_length tokens
    assert [r["output_tokens"] for r in recs] == [r["output_length"] for r in rows]
    bodies = captured(mock)
    assert len(bodies) == 2000
    by_prompt = {b["messages"][0]["content"]: b for b in bodies}
    prompts = [b["messages"][0]["content"].split() for b in bodies]
    assert sorted(len(p) for p in prompts) == sorted(r["input_length"] for r in rows)
    assert all(b["max_tokens"] == b["min_tokens"] and b["ignore_eos"] for b in by_prompt.values())
    info = result.info["dataset"]
    assert info["format"] == "mooncake" and info["trace_requests"] == 2000

    fast = run_perf(config.replace(speed=2.0))
    (key2,) = fast.results
    assert key2 == "trace_speed_2_parallel_512_number_2000"
    fm = only(fast)["metrics"]
    assert fm["requests_succeeded"] == 2000 and fm["trace_span_s"] == pytest.approx(span_s / 2)
    recs2 = sorted(records(fast), key=lambda r: r["index"])
    assert [r["scheduled_ms"] for r in recs2] == [pytest.approx(r["timestamp"] / 2, abs=2e-3) for r in rows]
    assert max(r["scheduled_ms"] for r in recs2) == pytest.approx(max(r["scheduled_ms"] for r in recs) / 2,
                                                                   abs=2e-3)
    assert [r["trace_timestamp_ms"] for r in recs2] == [float(r["timestamp"]) for r in rows]  # as recorded


def test_a_trace_shorter_than_number_is_refused(tmp_path: Path) -> None:
    from evalsvc.core.errors import ConfigError

    mooncake_trace(tmp_path / "t.jsonl", n=5)
    config = cfg("http://127.0.0.1:9/v1/chat/completions", tmp_path, dataset="trace",
                 dataset_path=str(tmp_path / "t.jsonl"), number=6)
    with pytest.raises(ConfigError, match=r"number: is 6 but the trace .*t\.jsonl holds 5 requests"):
        run_perf(config)


def test_shared_prefix_ttft_matches_the_mocks_cache_model(mock_factory: Any, tmp_path: Path) -> None:
    # The mock's model: TTFT = ttft_ms + prefill_ms_per_token x prompt tokens not cached, the cache holding whole
    # blocks of 16 tokens. A chat prompt is <user> + prefix (1024 words) + rest (64 words, opening with the
    # request's index): 1089 tokens. The first prompt of each of the 4 groups is all miss; every later one
    # finds the 64 blocks that lie wholly inside <user> + prefix (1024 tokens) and prefills 65.
    ttft, per_token, p, rest, groups, n = 5.0, 0.1, 1024, 64, 4, 24
    total = 1 + p + rest
    hit = (1 + p) // 16 * 16
    mock = mock_factory(ttft_ms=ttft, itl_ms=0, output_tokens=4, prefill_ms_per_token=per_token,
                        cache_tokens=1_000_000)
    shared = run_perf(cfg(mock.chat_url, tmp_path, prompt_tokens=rest, prefix_tokens=p, prefix_groups=groups,
                          number=n, parallel=1))
    stats = mock.stats()
    mock.reset()  # an empty cache for the run without a shared prefix
    assert stats["cache"]["hit_tokens"] == (n - groups) * hit  # the server's own count: exact
    assert stats["cache"]["miss_tokens"] == groups * total + (n - groups) * (total - hit)
    expected_share = shared.info["dataset"]["expected_cache_hit_share"]
    assert expected_share == pytest.approx((n - groups) * p / (n * (p + rest)))
    assert stats["cache"]["hit_share"] == pytest.approx(expected_share, rel=0.01)  # only the role token differs

    distinct = run_perf(cfg(mock.chat_url, tmp_path, prompt_tokens=p + rest, number=n, parallel=4))
    predicted_hit, predicted_miss = ttft + per_token * (total - hit), ttft + per_token * total
    recs = sorted(records(shared), key=lambda r: r["index"])
    got = [r["first_token_ms"] - r["sent_ms"] for r in recs]
    # a loaded machine can only make TTFT later: each one is at least its prediction, and lies nearer to it
    # than to the other case's (the gap between the two predictions, 102.4 ms here, is the margin)
    margin = (predicted_miss - predicted_hit) / 2
    for i, t in enumerate(got):
        want = predicted_miss if i < groups else predicted_hit
        assert want - 1.0 <= t < want + margin, (i, t, want)
    plain = [r["first_token_ms"] - r["sent_ms"] for r in records(distinct)]
    assert statistics.median(plain) >= predicted_miss - 1.0
    assert statistics.median(got) < statistics.median(plain) - margin


def test_new_options_reach_the_server_as_sent(mock_factory: Any, tmp_path: Path) -> None:
    mock = mock_factory(ttft_ms=0, itl_ms=0, output_tokens=64, capture_requests=True)
    result = run_perf(cfg(mock.chat_url, tmp_path, number=40, rate=400, arrival="gamma", burstiness=0.5,
                          rate_start=100, parallel=40, prompt_tokens_min=4, prompt_tokens_max=12,
                          max_tokens=10, max_tokens_stdev=4, ignore_eos=True, prefix_tokens=6, prefix_groups=2))
    m = only(result)["metrics"]
    assert m["requests_succeeded"] == 40
    assert (m["arrival"], m["burstiness"], m["rate_start"]) == ("gamma", 0.5, 100)
    bodies = captured(mock)
    lengths = [len(b["messages"][0]["content"].split()) for b in bodies]
    assert all(10 <= n <= 18 for n in lengths) and len(set(lengths)) > 1
    assert all(b["ignore_eos"] is True and b["min_tokens"] == b["max_tokens"] for b in bodies)
    assert len({b["max_tokens"] for b in bodies}) > 1
    # each request generated exactly the max_tokens it asked for
    assert sorted(r["output_tokens"] for r in records(result)) == sorted(b["max_tokens"] for b in bodies)
