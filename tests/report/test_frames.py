"""Runs and comparisons as pandas DataFrames; pandas is optional and its absence is one clear ImportError."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from evalsvc.core.report.compare import compare, load_run

pd = pytest.importorskip("pandas")  # in the dev extra


def _perf_run(path: Path, ttft: float) -> Path:
    path.mkdir()
    key = "parallel_2_number_4"
    records = [{"index": i, "sent_ms": 10.0 * i, "first_token_ms": 10.0 * i + ttft + i,
                "last_token_ms": 10.0 * i + ttft + i + 30.0, "end_ms": 10.0 * i + ttft + i + 31.0,
                "ok": i != 3, "error": None if i != 3 else "http_500", "output_tokens": 4, "streamed": True}
               for i in range(4)]
    (path / f"requests_{key}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    metrics = {"parallel": 2, "requests_total": 4, "requests_failed": 1, "request_throughput": 12.5,
               "failures_by_kind": {"http_500": 1}}
    point = {"metrics": metrics, "percentiles": {"ttft_ms": {"p50": ttft + 1, "p99": ttft + 2}}}
    (path / "config.json").write_text(json.dumps({"model": "m", "parallel": 2, "api_key": "***"}))
    (path / "summary.json").write_text(json.dumps({"status": "completed", "results": {key: point}}))
    return path


def test_run_frames(tmp_path: Path) -> None:
    run = load_run(_perf_run(tmp_path / "a", ttft=100.0))
    frame = run.to_frame()
    assert list(frame.index) == ["parallel_2_number_4"] and frame.index.name == "point"
    row = frame.loc["parallel_2_number_4"]
    assert row["request_throughput"] == 12.5 and row["requests_failed"] == 1 and row["ttft_ms_p99"] == 102.0
    assert "failures_by_kind" not in frame.columns  # a dict is no cell
    records = run.records_frame()
    assert len(records) == 4 and list(records["ok"]) == [True, True, True, False]
    # the summary's definitions, for the successful requests only (as its distributions are)
    assert list(records["ttft_ms"][:3]) == [100.0, 101.0, 102.0] and pd.isna(records["ttft_ms"][3])
    assert list(records["tpot_ms"][:3]) == [10.0, 10.0, 10.0]
    assert list(records["latency_ms"][:3]) == [131.0, 132.0, 133.0]
    assert records["error"][3] == "http_500"
    assert set(records["point"]) == {"parallel_2_number_4"}


def test_eval_run_and_comparison_frames(tmp_path: Path) -> None:
    for name, score in (("base", 0.8), ("new", 0.7)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps({"status": "completed", "result": {
            "gsm8k": {"score": score, "metric": "acc", "requested": 1000, "scored": 1000, "errored": 0,
                      "subsets": {"main": {}}}}}))
    frame = load_run(tmp_path / "base").to_frame()
    assert frame.index.name == "dataset" and frame.loc["gsm8k", "score"] == 0.8 and "subsets" not in frame.columns
    cmp = compare(tmp_path / "base", tmp_path / "new")
    rows = cmp.to_frame()
    assert list(rows.columns) == ["point", "metric", "base", "new", "change", "rel_change", "ci_low", "ci_high",
                                  "noise", "method", "verdict"]
    (row,) = rows.itertuples()
    assert row.metric == "gsm8k.score" and row.change == pytest.approx(-0.1) and row.verdict == "beyond noise"


def test_without_pandas_one_clear_import_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = load_run(_perf_run(tmp_path / "a", ttft=100.0))
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(ImportError, match=r"^Run.to_frame\(\) needs pandas, which is not installed: "
                                          r"pip install pandas$"):
        run.to_frame()
    with pytest.raises(ImportError, match="pip install pandas"):
        compare(run, run).to_frame()
