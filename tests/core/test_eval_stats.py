"""How sure a score is: stderr and 95 % intervals per dataset and subset, macro / micro means, repeats.

The closed forms are written out here, independently of evalsvc/core/_stats.py:
    stderr of a proportion p over n samples (sample standard deviation / sqrt(n)) = sqrt(p (1 - p) / (n - 1))
    Wilson 95 %: (p + z²/2n ± z sqrt(p (1 - p) / n + z²/4n²)) / (1 + z²/n), z = 1.959963984540054
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from evalsvc import EvalConfig, EvalResult, run_eval
from evalsvc.core import _stats
from evalsvc.core.report import compare
from tests._evaldata import Suite, generated_suite, mcq_row, write_local_copy
from tests._servers import MockHandle, QuietHandler, serve_http, start_mock

Z = 1.959963984540054


def closed_form_wilson(x: int, n: int) -> tuple[float, float]:
    p = x / n
    centre = p + Z * Z / (2 * n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return (centre - half) / (1 + Z * Z / n), (centre + half) / (1 + Z * Z / n)


def closed_form_stderr(x: int, n: int) -> float:
    p = x / n
    return math.sqrt(p * (1 - p) / (n - 1))


# --- the statistics themselves ---------------------------------------------------------------------------


@pytest.mark.parametrize(("x", "n"), [(7, 10), (14, 20), (0, 5), (5, 5), (1, 1), (333, 1000)])
def test_wilson_and_stderr_are_the_closed_forms(x: int, n: int) -> None:
    stats = _stats.mean_stats([1.0] * x + [0.0] * (n - x))
    assert stats["ci_method"] == "wilson" and stats["n"] == n and stats["score"] == pytest.approx(x / n)
    assert stats["ci95"] == pytest.approx(list(closed_form_wilson(x, n)), abs=1e-6)
    assert stats["stderr"] == (None if n < 2 else pytest.approx(closed_form_stderr(x, n), abs=1e-6))
    assert 0 <= stats["ci95"][0] <= x / n <= stats["ci95"][1] <= 1


def test_the_comparison_uses_the_same_wilson_interval() -> None:
    assert compare.wilson is _stats.wilson  # one home for the interval


def test_other_scores_get_a_seeded_bootstrap_interval() -> None:
    values = [0.1, 0.4, 0.35, 0.8, 0.9, 0.05, 0.6, 0.55, 0.7, 0.2]
    first, again = _stats.mean_stats(values), _stats.mean_stats(values)
    assert first == again and first["ci_method"] == "bootstrap"  # same values, same interval
    mean = sum(values) / len(values)
    assert first["ci95"][0] < mean < first["ci95"][1]
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    assert first["stderr"] == pytest.approx(sd / math.sqrt(len(values)), abs=1e-6)
    # the percentile bootstrap of a mean is close to the normal interval at this size
    assert first["ci95"][0] == pytest.approx(mean - Z * first["stderr"], abs=0.06)
    assert first["ci95"][1] == pytest.approx(mean + Z * first["stderr"], abs=0.06)


def test_no_values_give_no_numbers_rather_than_zeros() -> None:
    assert _stats.mean_stats([]) == {"score": None, "stderr": None, "ci95": None, "n": 0, "ci_method": None}


def test_macro_mean_weighs_datasets_equally() -> None:
    a, b = _stats.mean_stats([1.0] * 9 + [0.0]), _stats.mean_stats([1.0] * 5 + [0.0] * 5)
    macro = _stats.macro_stats([(a["score"], a["stderr"], a["ci95"]), (b["score"], b["stderr"], b["ci95"])])
    err = math.sqrt(a["stderr"] ** 2 + b["stderr"] ** 2) / 2
    assert macro["score"] == pytest.approx(0.7) and macro["stderr"] == pytest.approx(err, abs=1e-6)
    assert macro["ci95"] == pytest.approx([0.7 - Z * err, 0.7 + Z * err], abs=1e-6)
    alone = _stats.macro_stats([(a["score"], a["stderr"], a["ci95"])])
    assert alone["ci95"] == a["ci95"]  # one dataset: its own interval


# --- in a real evaluation on the simulated endpoint ------------------------------------------------------

N = 10
"""Questions per subset; generated_suite answers every third one wrong: 7 of 10 right per subset."""


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return generated_suite(tmp_path_factory.mktemp("stats-data"), N)


@pytest.fixture(scope="module")
def mock(suite: Suite) -> Iterator[MockHandle]:
    with start_mock(answers=suite.answers, ttft_ms=0, itl_ms=0) as server:
        yield server


def _run(mock: MockHandle, suite: Suite, work_dir: Path, **options: Any) -> EvalResult:
    return run_eval(EvalConfig(model="mock-model", api_url=mock.base_url, datasets=["iquiz", "ceval"],
                               dataset_dir=str(suite.dataset_dir), work_dir=str(work_dir), retry_interval=0,
                               report=False, eval_batch_size=4,
                               dataset_args={"ceval": {"few_shot_num": 0}}, **options))


@pytest.fixture(scope="module")
def once(mock: MockHandle, suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> EvalResult:
    return _run(mock, suite, tmp_path_factory.mktemp("once"))


@pytest.fixture(scope="module")
def four_times(mock: MockHandle, suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> EvalResult:
    return _run(mock, suite, tmp_path_factory.mktemp("four"), repeats=4)


def test_interval_on_the_answer_table_is_the_closed_form(once: EvalResult, suite: Suite) -> None:
    assert once.status == "completed", once.error
    right = sum(1 for i in suite.items["iquiz"] if i.correct)
    n = suite.count("iquiz")
    assert (right, n) == (14, 20)
    d = once["iquiz"]
    assert d.score == pytest.approx(right / n)
    assert (d.n, d.ci_method) == (n, "wilson")
    assert d.stderr == pytest.approx(closed_form_stderr(right, n), abs=1e-6)
    assert d.ci95 == pytest.approx(list(closed_form_wilson(right, n)), abs=1e-6)
    for subset in ("IQ", "EQ"):  # 7 of 10 each
        entry = once["iquiz"].subsets[subset]
        assert (entry["n"], entry["ci_method"]) == (N, "wilson")
        assert entry["stderr"] == pytest.approx(closed_form_stderr(7, N), abs=1e-6)
        assert entry["ci95"] == pytest.approx(list(closed_form_wilson(7, N)), abs=1e-6)
    shape = once.to_dict()["result"]["iquiz"]
    assert shape["ci95"] == d.ci95 and shape["stderr"] == d.stderr and shape["n"] == n


def test_the_report_page_shows_the_interval_beside_the_score(once: EvalResult) -> None:
    from evalsvc.core.report import build_eval_report

    assert once.output_dir
    page = build_eval_report(once.output_dir).read_text(encoding="utf-8")
    low, high = once["iquiz"].ci95 or [0, 0]
    row = page.split('data-dataset="iquiz"', 1)[1].split("</tr>", 1)[0]
    assert f'<td data-field="score">{once["iquiz"].score:.4f}</td><td data-field="ci95">[{low:.4f}, {high:.4f}]</td>' \
        in row


def test_macro_and_micro_means_across_datasets(once: EvalResult) -> None:
    agg = once.to_dict()["aggregate"]
    # iquiz 14/20 and ceval 14/20: micro pools 28 of 40, macro averages the two scores
    assert agg["micro"]["score"] == pytest.approx(0.7) and agg["micro"]["n"] == 40
    assert agg["micro"]["ci95"] == pytest.approx(list(closed_form_wilson(28, 40)), abs=1e-6)
    assert agg["macro"]["score"] == pytest.approx(0.7) and agg["macro"]["datasets"] == 2
    err = math.sqrt(2 * closed_form_stderr(14, 20) ** 2) / 2
    assert agg["macro"]["stderr"] == pytest.approx(err, abs=1e-6)


def test_timing_of_the_evaluations_own_requests(once: EvalResult) -> None:
    timing = once["iquiz"].timing
    assert timing["requests"] == 20
    assert timing["output_tokens"] > 0 and timing["input_tokens"] > 0
    assert timing["latency_ms"]["p50"] > 0 and timing["latency_ms"]["max"] >= timing["latency_ms"]["p50"]
    assert timing["ttft_ms"] is None  # evalscope does not stream by default: no TTFT rather than a made-up one
    assert timing["inference_s"] > 0
    assert timing["request_throughput"] == pytest.approx(20 / timing["inference_s"], rel=0.01)
    assert timing["output_throughput"] == pytest.approx(timing["output_tokens"] / timing["inference_s"], rel=0.01)


def test_streamed_answers_give_the_time_to_first_token(suite: Suite, tmp_path: Path) -> None:
    with start_mock(answers=suite.answers, ttft_ms=40, itl_ms=1) as slow:
        result = run_eval(EvalConfig(model="mock-model", api_url=slow.base_url, datasets=["iquiz"],
                                     dataset_dir=str(suite.dataset_dir), work_dir=str(tmp_path), retry_interval=0,
                                     report=False, limit=3, generation_config={"stream": True}))
        assert slow.stats()["streamed"] == 6  # 3 per subset, every one streamed
    timing = result["iquiz"].timing
    assert timing["requests"] == 6
    # the server waits 40 ms before its first token: no TTFT can be shorter, nor longer than the answer
    assert 40 <= timing["ttft_ms"]["p50"] <= timing["latency_ms"]["p50"]
    assert timing["ttft_ms"]["max"] <= timing["latency_ms"]["max"]


def test_four_repeats_at_temperature_zero_are_identical(once: EvalResult, four_times: EvalResult) -> None:
    assert four_times.status == "completed", four_times.error
    for name in ("iquiz", "ceval"):
        d = four_times[name]
        assert d.score == pytest.approx(once[name].score)
        assert d.scored == 4 * once[name].scored  # every answer counted ...
        assert d.n == once[name].n  # ... but the interval rests on the questions
        assert d.ci95 == pytest.approx(once[name].ci95)
        assert d.repeats == {"k": 4, "scores": [pytest.approx(once[name].score)] * 4,
                             "min": pytest.approx(once[name].score), "max": pytest.approx(once[name].score),
                             "stdev": 0.0, "agreement": 1.0,
                             "pass_at": {str(k): pytest.approx(once[name].score, abs=1e-4) for k in range(1, 5)}}
        assert d.timing["requests"] == 4 * once[name].timing["requests"]


# --- repeats at temperature > 0: each repeat its own seed --------------------------------------------------


class _SeedHandler(QuietHandler):
    """Answers right ("B") when the request's seed is even, wrong otherwise, and records what it saw."""

    seen: ClassVar[list[tuple[str, Any, Any]]] = []
    lock = threading.Lock()

    def do_GET(self) -> None:
        self.answer(json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode())

    def do_POST(self) -> None:
        body = json.loads(self.read_body())
        prompt = body["messages"][-1]["content"]
        found = re.search(r"\[(q\d+)\]", prompt)
        marker = found.group(1) if found else "?"
        seed = body.get("seed")
        with self.lock:
            self.seen.append((marker, seed, body.get("temperature")))
        letter = "B" if isinstance(seed, int) and seed % 2 == 0 else "C"
        self.answer(json.dumps({
            "id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"答案：{letter}"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}}).encode())


def test_repeats_when_sampling_send_seed_plus_r_and_report_the_spread(tmp_path: Path) -> None:
    write_local_copy(tmp_path / "iquiz", {"IQ": {"test": [mcq_row(f"[q{i}]", "B") for i in range(3)]}})
    _SeedHandler.seen = []
    with serve_http(_SeedHandler) as base:
        result = run_eval(EvalConfig(model="m", api_url=base + "/v1", datasets=["iquiz"], dataset_dir=str(tmp_path),
                                     work_dir=str(tmp_path / "out"), retry_interval=0, report=False, repeats=4,
                                     preflight=False, seed=42, generation_config={"temperature": 0.7}))
    assert result.status == "completed", result.error
    seeds: dict[str, list[Any]] = {}
    for marker, seed, temperature in _SeedHandler.seen:
        assert temperature == 0.7
        seeds.setdefault(marker, []).append(seed)
    assert {m: sorted(s) for m, s in seeds.items()} == {f"q{i}": [42, 43, 44, 45] for i in range(3)}
    d = result["iquiz"]
    # seeds 42 and 44 answer right, 43 and 45 wrong: repeats alternate 1, 0, 1, 0
    assert d.repeats is not None
    assert d.repeats["scores"] == [1.0, 0.0, 1.0, 0.0]
    assert (d.repeats["min"], d.repeats["max"]) == (0.0, 1.0)
    assert d.repeats["stdev"] == pytest.approx(math.sqrt(1 / 3))
    assert d.repeats["agreement"] == 0.0
    assert d.repeats["pass_at"]["1"] == pytest.approx(0.5) and d.repeats["pass_at"]["4"] == pytest.approx(1.0)
    assert d.score == pytest.approx(0.5)
    # every question scores 0.5 over its repeats: not 0/1 values, so a bootstrap interval over the 3 questions
    assert d.n == 3 and d.ci_method == "bootstrap" and d.ci95 == [0.5, 0.5]
