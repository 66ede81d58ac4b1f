"""Realistic workloads without a server: gamma and ramped arrivals, shared prefixes and length distributions for
`random`, ignore_eos in request bodies, the trace dataset's formats and its errors, and the rules between fields."""

from __future__ import annotations

import itertools
import json
import math
import statistics
from pathlib import Path
from typing import Any

import orjson
import pytest

from evalsvc import PerfConfig
from evalsvc.core.errors import ConfigError, DatasetError
from evalsvc.core.perf._run import schedule
from evalsvc.core.perf._schedule import arrival_offsets, trace_offsets
from evalsvc.core.perf.datasets import load_prompts
from evalsvc.core.perf.datasets._trace import BLOCK_TOKENS
from evalsvc.core.perf.dialects import get_dialect
from tests._perfrun import cfg

URL = "http://127.0.0.1:9/v1/chat/completions"


def gaps(offsets: Any) -> list[float]:
    return [b - a for a, b in itertools.pairwise(offsets)]


# -- arrivals ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("burstiness", [0.25, 1.0, 4.0])
def test_gamma_gaps_keep_the_mean_and_spread_as_burstiness_says(burstiness: float) -> None:
    rate = 50.0
    g = gaps(arrival_offsets(20001, rate, "gamma", seed=7, burstiness=burstiness))
    assert statistics.fmean(g) == pytest.approx(1 / rate, rel=0.05)
    # a gamma of shape k has a coefficient of variation 1/sqrt(k): burstier below 1, smoother above
    assert statistics.stdev(g) / statistics.fmean(g) == pytest.approx(1 / math.sqrt(burstiness), rel=0.06)


def test_gamma_is_seeded() -> None:
    a = arrival_offsets(100, 10.0, "gamma", seed=3, burstiness=0.5)
    assert list(a) == list(arrival_offsets(100, 10.0, "gamma", seed=3, burstiness=0.5))
    assert list(a) != list(arrival_offsets(100, 10.0, "gamma", seed=4, burstiness=0.5))


def test_constant_ramp_follows_the_linear_rate_exactly() -> None:
    # rate rises from 10/s to 30/s: N = 400 requests arrive within T = 2N / (r0 + r1) = 20 s, and request k is
    # at the t solving 10 t + (30 - 10) t^2 / (2 T) = k
    offs = arrival_offsets(400, 30.0, "constant", rate_start=10.0)
    span = 2 * 400 / (10 + 30)
    for k in (0, 1, 100, 250, 399):
        t = offs[k]
        assert 10 * t + 20 * t * t / (2 * span) == pytest.approx(k, abs=1e-6)
    first, last = gaps(offs)[0], gaps(offs)[-1]
    assert first == pytest.approx(1 / 10, rel=0.02) and last == pytest.approx(1 / 30, rel=0.02)
    assert offs[399] < span


@pytest.mark.parametrize(("start", "end"), [(0.0, 40.0), (40.0, 5.0)])
def test_poisson_ramp_halves_carry_the_expected_counts(start: float, end: float) -> None:
    n = 4000
    offs = arrival_offsets(n, end, "poisson", seed=11, rate_start=start)
    span = 2 * n / (start + end)
    half = span / 2
    # expected arrivals in the first half of T: integral of the rate = (r0 + (r0 + r1) / 2) / 2 * T / 2
    expected_first = (start + (start + end) / 2) / 2 * half
    got_first = sum(1 for t in offs if t < half)
    assert got_first == pytest.approx(expected_first, rel=0.06)
    assert all(b >= a for a, b in itertools.pairwise(offs))


def test_trace_offsets_scale_with_speed() -> None:
    stamps = [1000.0, 1000.0, 1500.0, 4000.0]
    assert list(trace_offsets(stamps)) == [0.0, 0.0, 0.5, 3.0]
    assert list(trace_offsets(stamps, 2.0)) == [0.0, 0.0, 0.25, 1.5]


def test_the_run_takes_gamma_and_ramp_from_the_config() -> None:
    config = PerfConfig(model="m", url=URL, dataset="random", rate=20, arrival="gamma", burstiness=0.5,
                        rate_start=5, number=50, seed=9)
    assert list(schedule(config, 50, 20.0)) == list(arrival_offsets(50, 20.0, "gamma", 9, burstiness=0.5,
                                                                    rate_start=5.0))
    assert schedule(config.replace(rate=-1, rate_start=None), 50, -1.0) is None


# -- random: shared prefixes and length distributions ---------------------------------------------------------

def test_shared_prefixes_round_robin_then_distinct(tmp_path: Path) -> None:
    config = cfg(URL, tmp_path, prompt_tokens=20, prefix_tokens=30, prefix_groups=3)
    prompts, info = load_prompts(config, 9)
    words = [p.text.split() for p in prompts]  # type: ignore[union-attr]
    assert all(len(w) == 50 and p.tokens == 50 for w, p in zip(words, prompts, strict=True))
    heads = [" ".join(w[:30]) for w in words]
    assert len(set(heads)) == 3
    assert all(heads[i] == heads[i % 3] for i in range(9))  # prompt i takes prefix i mod 3
    assert [w[30] for w in words] == [str(i) for i in range(9)]  # distinct right after the prefix
    # (N - G) * P / sum(P + n): 6 of 9 prompts reuse 30 of their 50 tokens
    assert info["expected_cache_hit_share"] == pytest.approx(6 * 30 / (9 * 50))
    assert (info["prefix_tokens"], info["prefix_groups"]) == (30, 3)


def test_without_options_random_prompts_are_unchanged(tmp_path: Path) -> None:
    prompts, info = load_prompts(cfg(URL, tmp_path, prompt_tokens=12, max_tokens=7), 5)
    assert [len(p.text.split()) for p in prompts] == [12] * 5  # type: ignore[union-attr]
    assert [p.text.split()[0] for p in prompts] == ["0", "1", "2", "3", "4"]  # type: ignore[union-attr]
    assert all(p.max_tokens == 7 for p in prompts)
    assert "expected_cache_hit_share" not in info and "prompt_tokens_distribution" not in info


def test_normal_lengths_have_the_mean_and_stdev_and_are_clipped(tmp_path: Path) -> None:
    config = cfg(URL, tmp_path, prompt_tokens=100, prompt_tokens_stdev=20, max_tokens=30, max_tokens_stdev=40,
                 max_tokens_max=60)
    prompts, info = load_prompts(config, 2000)
    lengths = [len(p.text.split()) for p in prompts]  # type: ignore[union-attr]
    assert lengths == [p.tokens for p in prompts]
    assert statistics.fmean(lengths) == pytest.approx(100, rel=0.03)
    assert statistics.stdev(lengths) == pytest.approx(20, rel=0.08)
    outputs = [p.max_tokens for p in prompts]
    assert min(outputs) == 1 and max(outputs) == 60  # a stdev above the mean: clipped at both ends
    assert info["max_tokens_distribution"]["shape"] == "normal"
    assert info["prompt_tokens_distribution"]["drawn_mean"] == pytest.approx(statistics.fmean(lengths), abs=1e-3)
    again, _ = load_prompts(config, 2000)
    assert [p.text for p in again] == [p.text for p in prompts]  # seeded


def test_uniform_lengths_cover_min_to_max(tmp_path: Path) -> None:
    config = cfg(URL, tmp_path, prompt_tokens_min=5, prompt_tokens_max=9, max_tokens_min=2, max_tokens_max=4)
    prompts, info = load_prompts(config, 500)
    assert {p.tokens for p in prompts} == {5, 6, 7, 8, 9}
    assert {p.max_tokens for p in prompts} == {2, 3, 4}
    assert info["prompt_tokens_distribution"]["shape"] == "uniform"


def test_prefix_and_lengths_with_a_tokenizer_are_exact(tmp_path: Path, tokenizer_dir: str) -> None:
    from transformers import AutoTokenizer

    config = cfg(URL, tmp_path, prompt_tokens=40, prompt_tokens_stdev=10, prefix_tokens=25, prefix_groups=2,
                 tokenizer_path=tokenizer_dir)
    prompts, info = load_prompts(config, 12)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    counts = [len(tok.encode(p.text, add_special_tokens=False)) for p in prompts]
    assert counts == [p.tokens for p in prompts] and len(set(counts)) > 1
    assert prompts[0].text[:60] == prompts[2].text[:60] != prompts[1].text[:60]  # type: ignore[index]
    assert info["prompt_tokens_source"] == "tokenizer"


# -- ignore_eos --------------------------------------------------------------------------------------------------

def test_ignore_eos_asks_for_exactly_each_requests_max_tokens(tmp_path: Path) -> None:
    config = cfg(URL, tmp_path, ignore_eos=True, max_tokens_min=3, max_tokens_max=9)
    prompts, _ = load_prompts(config, 20)
    for p in prompts:
        body = orjson.loads(get_dialect("openai").build(config, p))
        assert body["ignore_eos"] is True and body["min_tokens"] == body["max_tokens"] == p.max_tokens
    plain = orjson.loads(get_dialect("openai").build(config.replace(ignore_eos=False), prompts[0]))
    assert "ignore_eos" not in plain and "min_tokens" not in plain


def test_min_tokens_never_exceeds_a_drawn_max_tokens(tmp_path: Path) -> None:
    config = cfg(URL, tmp_path, min_tokens=5, max_tokens=8, max_tokens_min=2, max_tokens_max=8)
    prompts, _ = load_prompts(config, 50)
    for p in prompts:
        body = orjson.loads(get_dialect("openai").build(config, p))
        assert body["min_tokens"] == min(5, body["max_tokens"])


# -- rules between fields ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "message"), [
    ({"ignore_eos": True, "api": "anthropic"}, "ignore_eos: is not supported by api 'anthropic'"),
    ({"ignore_eos": True, "min_tokens": 3}, "min_tokens: cannot be combined with ignore_eos"),
    ({"dataset": "openqa", "prefix_tokens": 8}, "prefix_tokens: applies to the random dataset only"),
    ({"dataset": "openqa", "max_tokens_stdev": 8}, "max_tokens_stdev: applies to the random dataset only"),
    ({"prompt_tokens_min": 9, "prompt_tokens_max": 3}, "prompt_tokens_min: must be <= prompt_tokens_max (3)"),
    ({"max_tokens_min": 9}, "max_tokens_max: is needed too"),
    ({"prefix_groups": 4}, "prefix_groups: needs prefix_tokens > 0"),
    ({"burstiness": 0}, "burstiness: must be > 0"),
    ({"rate_start": 5}, "rate_start: ramps towards rate: give a rate > 0 too"),
    ({"speed": 2}, "speed: applies to the trace dataset only"),
    ({"dataset": "trace", "dataset_path": "t.jsonl", "rate": 5}, "rate: the trace dataset sends each request"),
    ({"dataset": "trace"}, "dataset_path: is required for dataset 'trace'"),
])
def test_rules_between_fields(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PerfConfig(model="m", url=URL, **{"dataset": "random", **fields})


def test_sweep_keys_of_a_trace_and_its_default_number() -> None:
    config = PerfConfig(model="m", url=URL, dataset="trace", dataset_path="t.jsonl", speed=2, parallel=[8, 64])
    assert config.number is None
    assert [k for k, *_ in config.runs(2000)] == ["trace_speed_2_parallel_8_number_2000",
                                                   "trace_speed_2_parallel_64_number_2000"]
    assert config.replace(number=10).runs(2000)[0][1] == 10
    assert PerfConfig(model="m", url=URL).runs()[0][1] == 1000


# -- trace files ---------------------------------------------------------------------------------------------------

def write_mooncake(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def trace_cfg(path: Path, tmp_path: Path, **kw: Any) -> PerfConfig:
    return cfg(URL, tmp_path, dataset="trace", dataset_path=str(path), number=None, **kw)


def test_mooncake_rows_become_prompts_with_shared_blocks(tmp_path: Path) -> None:
    path = write_mooncake(tmp_path / "t.jsonl", [
        {"timestamp": 0, "input_length": 700, "output_length": 5, "hash_ids": [1, 2]},
        {"timestamp": 40, "input_length": 600, "output_length": 9, "hash_ids": [1, 3]},
        {"timestamp": 40, "input_length": 300, "output_length": 2, "hash_ids": [2]},
        {"timestamp": 95.5, "input_length": 10, "output_length": 0},
    ])
    prompts, info = load_prompts(trace_cfg(path, tmp_path), 10**9)
    words = [p.text.split() for p in prompts]  # type: ignore[union-attr]
    assert [len(w) for w in words] == [700, 600, 300, 10] == [p.tokens for p in prompts]
    assert [p.max_tokens for p in prompts] == [5, 9, 2, 1]  # an output length of 0 is sent as 1
    assert words[0][:BLOCK_TOKENS] == words[1][:BLOCK_TOKENS]  # hash id 1 twice: the same block text
    assert words[0][BLOCK_TOKENS:700] == words[2][: 700 - BLOCK_TOKENS]  # id 2: first block of the third
    assert words[1][BLOCK_TOKENS] != words[0][BLOCK_TOKENS]
    assert words[3][0] == "3"  # no hash ids: distinct text opening with the request's index
    assert [p.meta for p in prompts] == [{"trace_index": i, "trace_timestamp_ms": t}
                                         for i, t in enumerate([0.0, 40.0, 40.0, 95.5])]
    assert info["format"] == "mooncake" and info["trace_requests"] == 4 and info["trace_span_s"] == 0.0955
    assert info["clipped_rows"] == 1


def test_burstgpt_csv_is_read_by_its_header(tmp_path: Path) -> None:
    path = tmp_path / "burst.csv"
    path.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                    "5,ChatGPT,472,18,490,Conversation log\n"
                    "5.25,GPT-4,1087,0,1087,API log\n"
                    "7,ChatGPT,12,33,45,Conversation log\n")
    prompts, info = load_prompts(trace_cfg(path, tmp_path), 10**9)
    assert [p.tokens for p in prompts] == [472, 1087, 12]
    assert [p.max_tokens for p in prompts] == [18, 1, 33]
    assert [p.meta["trace_timestamp_ms"] for p in prompts] == [5000.0, 5250.0, 7000.0]
    assert info["format"] == "burstgpt" and info["clipped_rows"] == 1 and info["trace_span_s"] == 2.0


@pytest.mark.parametrize(("content", "problem"), [
    ("", "is empty"),
    ('{"timestamp": 0, "input_length": 5, "output_length": 1}\n{"timestamp": 1, "input_length": 5,',
     ":2 is not valid JSON"),
    ('{"timestamp": "soon", "input_length": 5, "output_length": 1}\n', ":1: timestamp must be a number of ms"),
    ('{"timestamp": 0, "input_length": 0, "output_length": 1}\n', ":1: input_length must be an integer >= 1"),
    ('{"timestamp": 0, "input_length": 4}\n', ":1: output_length must be an integer >= 0, got nothing"),
    ('{"timestamp": 0, "input_length": 4, "output_length": 1, "hash_ids": ["a"]}\n',
     ":1: hash_ids must be a list of integers"),
    ('{"timestamp": 9, "input_length": 4, "output_length": 1}\n\n{"timestamp": 3, "input_length": 4, '
     '"output_length": 1}\n', ":3: timestamp goes back in time (3 ms after 9 ms)"),
    ("[1, 2]\n", ":1: not a Mooncake JSONL line nor a BurstGPT CSV header"),
    ("Timestamp,Model,Request tokens\n1,m,4\n", ":1: not a Mooncake JSONL line nor a BurstGPT CSV header "
     "(missing column 'Response tokens'"),
    ("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n1,m,-4,1,1,x\n",
     ":2: Request tokens must be an integer >= 0, got '-4'"),
    ("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\nnow,m,4,1,5,x\n",
     ":2: Timestamp must be a number of seconds >= 0, got 'now'"),
    ("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n", "holds no requests"),
])
def test_bad_trace_files_name_the_file_line_and_problem(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "trace.txt"
    path.write_text(content)
    with pytest.raises(DatasetError) as err:
        load_prompts(trace_cfg(path, tmp_path), 10**9)
    message = str(err.value)
    assert message.startswith(f"dataset_path: {path}") and problem in message, message
    assert "\n" not in message
