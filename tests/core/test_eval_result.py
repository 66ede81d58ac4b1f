"""Reading evalscope's report files into DatasetResult, and how results render."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalsvc import DatasetResult, EvalResult
from evalsvc.core.eval._result import read_dataset_result
from tests._evaldata import write_jsonl


def _metric(score: float, num: int, subsets: list[tuple[str, float, int]], category: str = "default") -> dict:
    return {"identity": {"name": "accuracy", "aggregation": "mean", "dimensions": {}}, "num": num, "score": score,
            "categories": [{"name": [category], "num": num, "score": score,
                            "subsets": [{"name": n, "score": s, "num": k, "is_aggregate": False}
                                        for n, s, k in subsets]}]}


def _write_run(root: Path, *, errored: int) -> Path:
    """An evalscope output folder for ceval: 4 of 6 samples scored 0.75, `errored` failed."""
    write_jsonl(root / "predictions" / "m" / "ceval_logic.jsonl", [{"index": i} for i in range(4)])
    write_jsonl(root / "reviews" / "m" / "ceval_logic.jsonl", [
        {"index": i, "sample_score": {"sample_id": i, "group_id": i, "generation_index": 0,
                                      "score": {"value": {"accuracy": float(i != 3)}, "status": "success",
                                                "main_score_name": "accuracy"}}} for i in range(4)])
    report = {
        "metrics": [_metric(0.75, 4, [("logic", 0.75, 4)], category="Humanities")],
        "primary_metric_identity": {"name": "accuracy", "aggregation": "mean", "dimensions": {}},
        "execution_summary": {"requested": 4 + errored, "succeeded": 4, "errored": errored,
                              "incomplete": errored > 0,
                              "subsets": {"logic": {"requested": 4 + errored, "succeeded": 4, "errored": errored}}},
        "perf_metrics": {"summary": {"n_samples": 4, "latency": {"mean": 0.5, "50%": 0.4, "99%": 0.9},
                                     "usage": {"total_input_tokens": 400, "total_output_tokens": 40}}},
    }
    (root / "reports" / "m").mkdir(parents=True)
    (root / "reports" / "m" / "ceval.json").write_text(json.dumps(report))
    return root


def test_report_is_read_with_errored_samples_surfaced(tmp_path: Path) -> None:
    d = read_dataset_result("ceval", _write_run(tmp_path, errored=2), status="completed", error=None, total=6,
                            sample_errors=["APIStatusError: 500"], duration_s=1.5)
    assert (d.score, d.metric, d.requested, d.scored, d.errored, d.predicted) == (0.75, "accuracy", 6, 4, 2, 4)
    assert d.incomplete
    assert d.subsets == {"logic": {"score": 0.75, "scored": 4, "requested": 6, "errored": 2,
                                   "stderr": 0.25, "ci95": [pytest.approx(0.300642, abs=1e-6),
                                                            pytest.approx(0.954413, abs=1e-6)],
                                   "n": 4, "ci_method": "wilson"}}
    assert (d.stderr, d.n, d.ci_method) == (0.25, 4, "wilson")  # sqrt(.75 * .25 / 3) over the 4 scored
    assert d.categories == {"Humanities": {"score": 0.75, "scored": 4, "subsets": ["logic"]}}
    assert d.usage["input_tokens"] == 400 and d.usage["latency_s_p99"] == 0.9
    assert d.report_path.endswith("reports/m/ceval.json")
    assert "errored 2" in repr(d) and "incomplete" in repr(d)


def test_a_clean_run_is_complete(tmp_path: Path) -> None:
    d = read_dataset_result("ceval", _write_run(tmp_path, errored=0), status="completed", error=None, total=4,
                            sample_errors=[], duration_s=1.0)
    assert not d.incomplete and d.to_dict()["incomplete"] is False


def test_a_stopped_run_reports_predictions_not_a_score(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "predictions" / "m" / "iquiz_IQ.jsonl", [{"index": 0}, {"index": 1}])
    d = read_dataset_result("iquiz", tmp_path, status="cancelled", error=None, total=8, sample_errors=[],
                            duration_s=2.0)
    assert (d.score, d.scored, d.predicted, d.requested) == (None, 0, 2, 8)
    assert d.subsets == {"IQ": {"score": None, "scored": 0, "predicted": 2}}
    assert d.incomplete


def test_a_finished_worker_without_report_is_a_failure(tmp_path: Path) -> None:
    d = read_dataset_result("gsm8k", tmp_path, status="completed", error=None, total=None, sample_errors=[],
                            duration_s=None)
    assert d.status == "failed" and d.error == "evalscope wrote no report"


def test_result_renders_as_text_table_html_and_markdown() -> None:
    result = EvalResult(status="completed", output_dir="/x", model="m", datasets={
        "gsm8k": DatasetResult(name="gsm8k", score=0.8, metric="accuracy", requested=10, scored=10),
        "iquiz": DatasetResult(name="iquiz", score=1.0, metric="accuracy", requested=5, scored=3, errored=2),
    })
    assert result.incomplete and result.scores == {"gsm8k": 0.8, "iquiz": 1.0}
    assert "<DatasetResult gsm8k: 0.8000 accuracy, scored 10/10>" in repr(result)
    html = result._repr_html_()
    assert "<td>iquiz</td>" in html and "<td>incomplete</td>" in html
    assert "| iquiz | accuracy | 1.0000 | — | 3/5 | 2 | incomplete |" in result.to_markdown()
    from rich.console import Console

    console = Console(width=100, record=True)
    console.print(result)
    text = console.export_text()
    assert "gsm8k" in text and "0.8000" in text and "incomplete" in text
    data = result.to_dict()
    assert data["result"]["gsm8k"]["score"] == 0.8 and data["incomplete"] is True


@pytest.mark.parametrize("status", ["failed", "cancelled", "timeout"])
def test_any_unfinished_status_is_incomplete(status: str) -> None:
    assert DatasetResult(name="x", status=status, requested=3, scored=3).incomplete


def test_no_interval_for_a_score_that_is_not_the_mean_of_its_samples(tmp_path: Path) -> None:
    root = _write_run(tmp_path, errored=0)  # reviews: 3 of 4 right (mean 0.75)
    report_path = root / "reports" / "m" / "ceval.json"
    report = json.loads(report_path.read_text())
    report["metrics"] = [_metric(0.6, 4, [("logic", 0.6, 4)], category="Humanities")]  # e.g. a weighted mean
    report_path.write_text(json.dumps(report))
    d = read_dataset_result("ceval", root, status="completed", error=None, total=4, sample_errors=[], duration_s=1.0)
    assert d.score == 0.6 and d.n == 4
    assert (d.stderr, d.ci95, d.ci_method) == (None, None, None)  # an interval of 0.75 would not describe 0.6
    assert d.subsets["logic"]["ci95"] is None
    assert EvalResult(status="completed", output_dir="/x", datasets={"ceval": d}).aggregate["micro"]["n"] == 0
