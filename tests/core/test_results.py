"""PerfResult and EvalResult behave alike (one base), with their JSON shapes unchanged; progress events share `part`."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from evalsvc import PerfConfig, RunStatus, run_perf
from evalsvc.core import progress as progress_module
from evalsvc.core.eval import DatasetResult, EvalResult
from evalsvc.core.perf import PerfResult, RunResult

_METRICS = {"requests_total": 2, "requests_succeeded": 2, "requests_failed": 0, "failures_by_kind": {}}


def _perf(status: str = "completed", error: str | None = None) -> PerfResult:
    return PerfResult(output_dir="/out/perf_1", status=status, error=error,
                      results={"parallel_1_number_2": RunResult(metrics=dict(_METRICS), percentiles={}),
                               "parallel_4_number_2": RunResult(metrics=dict(_METRICS), percentiles={})})


def _eval(status: str = "completed", error: str | None = None) -> EvalResult:
    return EvalResult(status=status, output_dir="/out/eval_1", error=error, model="m",
                      datasets={"gsm8k": DatasetResult(name="gsm8k", score=0.5, metric="acc", requested=2, scored=2),
                                "iquiz": DatasetResult(name="iquiz", score=1.0, metric="acc", requested=1, scored=1)})


@pytest.mark.parametrize("make", [_perf, _eval])
def test_both_results_share_one_access_style(make: Any) -> None:
    result = make()
    parts = result.results if isinstance(result, PerfResult) else result.datasets
    assert isinstance(result, Mapping)
    assert list(result) == list(parts) and len(result) == 2
    for name in parts:
        assert name in result and result[name] is parts[name]
    with pytest.raises(KeyError):
        result["no-such-part"]
    assert (result.status, result.error, result.exit_code) == ("completed", None, 0)
    assert result.output_dir.startswith("/out/")
    assert "<table>" in result._repr_html_()
    data = result.to_dict()
    assert (data["status"], data["error"], data["output_dir"]) == ("completed", None, result.output_dir)
    assert type(data["status"]) is str


def test_the_json_shapes_are_unchanged() -> None:
    assert list(_perf().to_dict()) == ["output_dir", "status", "error", "results", "info"]
    assert set(_perf().to_dict()["results"]["parallel_1_number_2"]) == {"metrics", "percentiles"}
    assert list(_eval().to_dict()) == ["output_dir", "status", "error", "incomplete", "model", "started_at",
                                       "finished_at", "duration_s", "result", "info", "aggregate"]
    assert _eval().to_dict()["result"]["gsm8k"]["score"] == 0.5


@pytest.mark.parametrize(("status", "code"), [("failed", 1), ("interrupted", 130), ("cancelled", 130),
                                              ("timeout", 1), ("incomplete", 1)])
def test_exit_code_follows_the_status(status: str, code: int) -> None:
    assert _perf(status, "why").exit_code == _eval(status, "why").exit_code == code


def test_the_old_field_access_of_a_perf_result_still_answers_with_a_warning() -> None:
    result = _perf()
    with pytest.warns(DeprecationWarning):
        assert result["status"] == "completed"
    with pytest.warns(DeprecationWarning):
        assert set(result["results"]) == {"parallel_1_number_2", "parallel_4_number_2"}
    assert result.results["parallel_1_number_2"].metrics["requests_total"] == 2  # attributes unchanged


def test_progress_events_are_typed_once_with_a_common_part_key() -> None:
    for name in ("PerfProgress", "PerfRunDone", "EvalProgress", "EvalStatus", "EvalLog", "CapacityProbe"):
        assert "part" in typing.get_type_hints(getattr(progress_module, name)), name
    event = progress_module.perf_progress("parallel_1_number_2", 1, 2, 0, 3.5, 0.2)
    assert event == {"type": "progress", "part": "parallel_1_number_2", "run": "parallel_1_number_2", "done": 1,
                     "total": 2, "failed": 0, "rps": 3.5, "elapsed_s": 0.2, "met": None}
    status = progress_module.eval_status("gsm8k", RunStatus.COMPLETED, error=None)
    assert status == {"type": "status", "part": "gsm8k", "dataset": "gsm8k", "status": "completed", "error": None}
    assert type(status["status"]) is str


def test_perf_progress_events_name_the_part_and_keep_the_documented_keys(mock_server: Any, tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    result = run_perf(PerfConfig(model="mock-model", url=mock_server.chat_url, dataset="random", prompt_tokens=8,
                                 max_tokens=4, number=[3, 4], parallel=[1, 2], work_dir=str(tmp_path)),
                      progress=events.append)
    started, *events = events  # first: the run's output directory exists (part None: the run as a whole)
    assert started == {"type": "status", "part": None, "dataset": None, "status": "running",
                       "output_dir": result.output_dir}
    assert events and all(e["part"] == e["run"] and e["part"] in result for e in events)
    progress = [e for e in events if e["type"] == "progress"]
    assert progress and {"type", "part", "run", "done", "total", "failed", "rps", "elapsed_s"} <= set(progress[-1])
    done = [e for e in events if e["type"] == "run_done"]
    assert [e["part"] for e in done] == list(result)
    assert done[-1]["metrics"]["requests_succeeded"] == 4
