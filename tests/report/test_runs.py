"""`evalsvc runs [DIR]` and `list_runs`: the runs of an outputs directory, newest first, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evalsvc import run_perf
from evalsvc.cli import main
from evalsvc.core.errors import ConfigError
from evalsvc.core.report.runs import list_runs
from tests._perfrun import cfg
from tests._servers import start_mock


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("outputs")
    with start_mock(ttft_ms=5, itl_ms=1, output_tokens=4) as mock:  # a real 2-point sweep, nested one level
        result = run_perf(cfg(mock.chat_url, root / "team" / "nightly", number=[8, 12], parallel=[2, 4],
                              max_tokens=4, report=False))
    assert result.status == "completed"
    # an eval run (as eval writes it: config.json's config, summary.json's result, a dataset folder below)
    ev = root / "eval_20240102_030405_abcdef"
    _write(ev / "config.json", {"config": {"model": "qwen", "datasets": ["gsm8k", "arc"], "api_key": "***"}})
    _write(ev / "summary.json", {"status": "incomplete", "model": "qwen", "started_at": "2024-01-02T03:04:05.000Z",
                                 "result": {"gsm8k": {"score": 0.8125, "metric": "accuracy", "requested": 20,
                                                      "scored": 16, "errored": 4},
                                            "arc": {"score": 0.5, "metric": "acc", "requested": 10, "scored": 10,
                                                    "errored": 0}}})
    _write(ev / "gsm8k" / "summary.json", {"not": "a run"})  # evalscope's files below a run are not runs
    # an older perf run, summary only; one with no summary yet; one cut short; something else entirely
    old = root / "perf_20230101_000000_000001"
    _write(old / "config.json", {"model": "old-model", "parallel": 1})
    _write(old / "summary.json", {"status": "failed", "error": "no request succeeded (http_500: 3)",
                                  "info": {"started_at": "2023-01-01T00:00:00.000Z", "model": "old-model"},
                                  "results": {"parallel_1_number_3": {"metrics": {
                                      "requests_total": 3, "requests_failed": 3, "request_throughput": 0.0,
                                      "ttft_ms_p50": None}}}})
    _write(root / "perf_20220101_000000_000002" / "config.json", {"model": "m", "parallel": 1})
    _write(root / "eval_20210101_000000_000003" / "summary.json", '{"status": "compl')
    _write(root / "notes" / "readme.txt", "not a run")
    _write(root / ".evalsvc" / "perf_20250101_000000_000004" / "summary.json", {"results": {}})
    return root


def test_lists_every_run_newest_first(outputs: Path) -> None:
    runs = list_runs(outputs)
    names = [Path(r.path).name for r in runs]
    assert len(names) == 5 and names[1:] == ["eval_20240102_030405_abcdef", "perf_20230101_000000_000001",
                                             "perf_20220101_000000_000002", "eval_20210101_000000_000003"]
    perf, ev, old, partial, cut = runs
    assert Path(perf.path).parent == outputs / "team" / "nightly"  # nested work_dir found
    summary = json.loads((Path(perf.path) / "summary.json").read_text())
    points = [p["metrics"] for p in summary["results"].values()]
    assert (perf.kind, perf.status, perf.model, perf.points, perf.requests) == ("perf", "completed", "mock-model",
                                                                                2, 20)
    assert perf.request_throughput_max == max(m["request_throughput"] for m in points)
    assert perf.ttft_p50_ms_min == min(m["ttft_ms_p50"] for m in points)
    assert perf.time == summary["info"]["started_at"][:19] + "Z"
    assert (ev.kind, ev.status, ev.model, ev.time) == ("eval", "incomplete", "qwen", "2024-01-02T03:04:05Z")
    assert ev.datasets["gsm8k"] == {"score": 0.8125, "metric": "accuracy", "requested": 20, "scored": 16,
                                    "errored": 4}
    assert (old.status, old.failed, old.error) == ("failed", 3, "no request succeeded (http_500: 3)")
    assert (partial.kind, partial.status, partial.model) == ("perf", "partial", "m")
    assert "no summary.json" in (partial.error or "")
    assert (cut.kind, cut.status) == ("eval", "unreadable") and "not valid JSON" in (cut.error or "")


def test_cli_table_and_json(outputs: Path, capsys: Any) -> None:
    with pytest.raises(SystemExit) as info:
        main(["runs", str(outputs)])
    out = capsys.readouterr().out
    assert info.value.code == 0
    lines = [line for line in out.splitlines() if "│" in line and ("perf" in line or "eval" in line)]
    assert [("eval" if "│ eval" in line else "perf") for line in lines] == ["perf", "eval", "perf", "perf", "eval"]
    assert "2 points · 20 req · best" in lines[0] and "team/nightly/perf_" in lines[0]
    assert "gsm8k 0.8125 (16/20, 4 errored), arc 0.5000 (10/10)" in lines[1]
    assert "unreadable" in lines[4] and "partial" in lines[3]
    with pytest.raises(SystemExit) as info:
        main(["runs", str(outputs), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert info.value.code == 0 and [r["status"] for r in data["runs"]] == [
        "completed", "incomplete", "failed", "partial", "unreadable"]
    assert set(data["runs"][0]) >= {"path", "kind", "time", "model", "status", "error", "points", "requests",
                                    "request_throughput_max", "ttft_p50_ms_min", "datasets"}


def test_a_run_directory_itself_and_bad_dirs(outputs: Path, tmp_path: Path, capsys: Any) -> None:
    (only,) = list_runs(outputs / "eval_20240102_030405_abcdef")
    assert only.kind == "eval"
    with pytest.raises(ConfigError, match="is not a directory"):
        list_runs(tmp_path / "missing")
    with pytest.raises(SystemExit) as info:
        main(["runs", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and err.startswith("ConfigError: DIR: ")
    with pytest.raises(SystemExit) as info:
        main(["runs", str(tmp_path)])
    assert info.value.code == 0 and capsys.readouterr().out == f"no runs in {tmp_path}\n"
