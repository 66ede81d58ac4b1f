"""The eval report: a real run_eval against the mock (one request in five fails), its report.html read back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evalsvc import EvalConfig, EvalResult, run_eval
from evalsvc.core.report import build_eval_report, build_report
from evalsvc.core.report._eval import load_eval_run
from tests._evaldata import Suite, small_suite
from tests._servers import start_mock
from tests.report._browser import open_report

SECRET = "sk-eval-report-SECRET-0123456789"


def _config(url: str, suite: Suite, work_dir: Path, **over: Any) -> EvalConfig:
    options: dict[str, Any] = dict(model="mock-model", api_url=url, api_key=SECRET,
                                   datasets=["gsm8k", "iquiz", "ceval"], dataset_dir=str(suite.dataset_dir),
                                   work_dir=str(work_dir), retries=0, retry_interval=0, preflight=False,
                                   generation_config={"temperature": 0.0, "max_tokens": 64})
    options.update(over)
    return EvalConfig(**options)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return small_suite(tmp_path_factory.mktemp("eval-report-data"))


@pytest.fixture(scope="module")
def faulty_run(suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> EvalResult:
    """Three datasets, some answers wrong by design, and the mock failing 1 request in 5 (no retries)."""
    with start_mock(answers=suite.answers, ttft_ms=0, itl_ms=0, error_500=0.2, fault_cycle=5) as mock:
        result = run_eval(_config(mock.base_url, suite, tmp_path_factory.mktemp("eval-report-out")))
    assert result.status == "incomplete", result.error
    assert sum(d.errored for d in result.datasets.values()) > 0
    return result


def _summary(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    return data


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_run_eval_writes_the_report_by_default(faulty_run: EvalResult) -> None:
    run_dir = Path(faulty_run.output_dir or "")
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and 'id="sample-table"' in html
    assert "report_error" not in _summary(run_dir)["info"]
    assert "<script src=" not in html  # self-contained: plotly.js inlined, nothing fetched


def test_sample_rows_are_the_predictions_joined_with_their_reviews(faulty_run: EvalResult) -> None:
    run_dir = Path(faulty_run.output_dir or "")
    run = load_eval_run(run_dir)
    for name, d in faulty_run.datasets.items():
        expected = set()
        for pred_file in d.predictions:
            subset = Path(pred_file).stem[len(name) + 1:]
            reviews = {r["index"]: r for r in _jsonl(Path(pred_file.replace("/predictions/", "/reviews/")))}
            for p in _jsonl(Path(pred_file)):
                review = reviews[p["index"]]
                score = review["sample_score"]["score"]["value"]["accuracy"]
                expected.add((subset, p["index"], p["model_output"]["choices"][0]["message"]["content"],
                              ", ".join(review["target"]), score, "correct" if score == 1.0 else "wrong"))
        rows = [s for s in run.samples if s.dataset == name]
        answered = {(s.subset, s.index, s.answer, s.reference, s.score, s.status)
                    for s in rows if s.status != "errored"}
        assert answered == expected
        assert len(rows) == d.requested
        # the score table's figure follows from the rows: correct / scored
        correct = sum(1 for s in rows if s.status == "correct")
        assert correct / d.scored == pytest.approx(d.score, abs=1e-4)


def test_errored_samples_are_rows_marked_errored(faulty_run: EvalResult) -> None:
    run_dir = Path(faulty_run.output_dir or "")
    run = load_eval_run(run_dir)
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    for name, d in faulty_run.datasets.items():
        errored = [s for s in run.samples if s.dataset == name and s.status == "errored"]
        assert len(errored) == d.errored
        for s in errored:
            assert s.answer.startswith("no answer: ") and "500" in s.answer and s.score is None
            assert s.index is not None  # the index the failed request left missing
    assert html.count('data-status="errored"') == sum(d.errored for d in faulty_run.datasets.values())


def test_no_api_key_in_the_page(faulty_run: EvalResult) -> None:
    html = (Path(faulty_run.output_dir or "") / "report.html").read_text(encoding="utf-8")
    assert SECRET not in html and SECRET[-12:] not in html
    assert "<code>api_key</code></td><td>***</td>" in html
    assert "<code>max_tokens</code></td><td>64</td>" in html  # the generation settings


def test_cli_rebuilds_an_eval_report_and_refuses_other_directories(faulty_run: EvalResult, tmp_path: Path) -> None:
    run_dir = Path(faulty_run.output_dir or "")
    (run_dir / "report.html").unlink()
    proc = subprocess.run([sys.executable, "-m", "evalsvc", "report", str(run_dir)], check=False,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(run_dir / "report.html") and (run_dir / "report.html").is_file()
    proc = subprocess.run([sys.executable, "-m", "evalsvc", "report", str(tmp_path)], check=False,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("is not a perf or eval run directory (it needs the config.json and "
                                        "summary.json that `evalsvc perf` or `evalsvc eval` writes)")
    assert build_report(run_dir) == run_dir / "report.html"


def test_a_report_that_fails_is_recorded_and_the_run_kept(suite: Suite, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import evalsvc.core.report as report

    def broken(run_dir: Any) -> Path:
        raise RuntimeError("template exploded")

    monkeypatch.setattr(report, "build_eval_report", broken)
    with start_mock(answers=suite.answers, ttft_ms=0, itl_ms=0) as mock:
        result = run_eval(_config(mock.base_url, suite, tmp_path / "a", datasets=["gsm8k"]))
        skipped = run_eval(_config(mock.base_url, suite, tmp_path / "b", datasets=["gsm8k"], report=False))
    assert result.status == "completed" and result["gsm8k"].score == pytest.approx(0.8)
    summary = _summary(Path(result.output_dir or ""))
    assert summary["info"] == {"report_error": "RuntimeError: template exploded"}
    assert summary["result"]["gsm8k"]["score"] == pytest.approx(0.8)
    assert not (Path(result.output_dir or "") / "report.html").exists()
    assert not (Path(skipped.output_dir or "") / "report.html").exists()
    assert _summary(Path(skipped.output_dir or ""))["info"] == {}


def test_the_page_in_a_browser(faulty_run: EvalResult) -> None:
    run_dir = Path(faulty_run.output_dir or "")
    path = build_eval_report(run_dir)
    summary = _summary(run_dir)["result"]
    # wrong or errored, from summary.json alone: requested minus the correct ones (score x scored)
    not_right = sum(d["requested"] - round(d["score"] * d["scored"]) for d in summary.values())
    total = sum(d["requested"] for d in summary.values())
    errored = sum(d["errored"] for d in summary.values())
    assert 0 < errored < not_right < total
    with open_report(path) as opened:
        page = opened.page
        scores = page.evaluate("""() => Array.from(document.querySelectorAll('#score-table tbody tr')).map(tr => ({
            name: tr.dataset.dataset,
            score: tr.querySelector('[data-field=score]').textContent.trim(),
            requested: tr.querySelector('[data-field=requested]').textContent.trim(),
            scored: tr.querySelector('[data-field=scored]').textContent.trim(),
            errored: tr.querySelector('[data-field=errored]').textContent.trim()}))""")
        assert scores == [{"name": n, "score": f"{d['score']:.4f}", "requested": str(d["requested"]),
                           "scored": str(d["scored"]), "errored": str(d["errored"])} for n, d in summary.items()]
        assert [p["rendered"] for p in opened.plots()] == [True]
        visible = "() => Array.from(document.querySelectorAll('#sample-table tbody tr')).filter(tr => !tr.hidden)" \
                  ".map(tr => tr.dataset.status)"
        assert len(page.evaluate(visible)) == total
        page.check("input[name=show][value=wrong]")
        shown = page.evaluate(visible)
        assert len(shown) == not_right and set(shown) == {"wrong", "errored"}
        assert page.text_content("#shown-count") == str(not_right)
        page.check("input[name=show][value=errored]")
        assert page.evaluate(visible) == ["errored"] * errored
        page.select_option("#dataset-filter", "gsm8k")
        assert len(page.evaluate(visible)) == summary["gsm8k"]["errored"]
        page.check("input[name=show][value=all]")
        assert len(page.evaluate(visible)) == summary["gsm8k"]["requested"]
        assert opened.errors == [] and opened.blocked == []
