"""`evalsvc eval` and `evalsvc benchmarks`: flags reach EvalConfig, errors are one line, Ctrl-C resumes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import evalsvc.core.eval
from evalsvc import DatasetResult, EvalConfig, EvalResult
from evalsvc.cli import main
from tests._evaldata import mcq_row, small_suite, write_local_copy
from tests._servers import start_mock


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalsvc", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_wrong_dataset_name_is_one_line_exit_2() -> None:
    out = _cli("eval", "--model", "m", "--api-url", "http://127.0.0.1:9/v1", "--datasets", "gsm8")
    assert out.returncode == 2
    assert _one_line(out.stderr) == "ConfigError: datasets: unknown benchmark 'gsm8': did you mean 'gsm8k'?"


def test_missing_api_url_is_one_line_exit_2() -> None:
    out = _cli("eval", "--model", "m", "--datasets", "gsm8k")
    assert out.returncode == 2
    assert _one_line(out.stderr).startswith("ConfigError: api_url: is required")


def test_unreachable_endpoint_is_one_line_exit_1() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = _cli("eval", "--model", "m", "--api-url", f"http://127.0.0.1:{port}/v1", "-d", "gsm8k")
    assert out.returncode == 1
    line = _one_line(out.stderr)
    assert line.startswith(f"EndpointUnreachable: cannot connect to http://127.0.0.1:{port}/v1/models")


def test_flags_build_the_config(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[EvalConfig] = []

    async def fake_run(config: EvalConfig, *, progress: Any = None, cancel: Any = None) -> EvalResult:
        seen.append(config)
        return EvalResult(status="completed", output_dir="/tmp/x", model=config.model, datasets={
            "gsm8k": DatasetResult(name="gsm8k", score=0.5, metric="accuracy", requested=2, scored=2)})

    monkeypatch.setattr(evalsvc.core.eval, "run_eval_async", fake_run)
    monkeypatch.setenv("EVALSVC_API_KEY", "sk-from-env-123456")
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--model", "qwen", "--api-url", "http://h:8000/v1", "--datasets", "gsm8k", "iquiz",
              "--limit", "10", "--eval-batch-size", "4", "--max-tokens", "256", "--generation-config",
              '{"top_p": 0.9}', "--dataset-args", '{"iquiz": {"subset_list": ["IQ"]}}', "--max-workers", "2",
              "--timeout", "60", "--retries", "1", "--retry-interval", "0.5", "--no-preflight", "--quiet", "--json"])
    assert exit_info.value.code == 0
    (config,) = seen
    assert config.datasets == ["gsm8k", "iquiz"] and config.limit == 10 and config.eval_batch_size == 4
    assert config.generation_config == {"temperature": 0.0, "max_tokens": 256, "top_p": 0.9}
    assert config.dataset_args == {"iquiz": {"subset_list": ["IQ"]}}
    assert (config.max_workers, config.timeout, config.retries, config.retry_interval) == (2, 60, 1, 0.5)
    assert config.preflight is False and config.api_key == "sk-from-env-123456"
    printed = json.loads(capsys.readouterr().out)
    assert printed["result"]["gsm8k"]["score"] == 0.5 and printed["output_dir"] == "/tmp/x"


def test_datasets_may_be_comma_separated_or_positional(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[EvalConfig] = []

    async def fake_run(config: EvalConfig, **_: Any) -> EvalResult:
        seen.append(config)
        return EvalResult(status="completed", output_dir=None, model="m")

    monkeypatch.setattr(evalsvc.core.eval, "run_eval_async", fake_run)
    for argv in (["eval", "gsm8k", "ceval", "--model", "m", "--api-url", "http://h/v1", "-q"],
                 ["eval", "--model", "m", "--api-url", "http://h/v1", "-d", "gsm8k,ceval", "-q"]):
        with pytest.raises(SystemExit):
            main(argv)
    assert [c.datasets for c in seen] == [["gsm8k", "ceval"], ["gsm8k", "ceval"]]


def test_eval_against_the_mock_prints_the_table_and_json(tmp_path: Path) -> None:
    suite = small_suite(tmp_path / "data")
    with start_mock(answers=suite.answers, ttft_ms=0, itl_ms=0) as mock:
        common = ["eval", "--model", "mock-model", "--api-url", mock.base_url, "--datasets", "gsm8k", "iquiz",
                  "--dataset-dir", str(tmp_path / "data"), "--work-dir", str(tmp_path / "out")]
        table = _cli(*common)
        as_json = _cli(*common, "--json", "--quiet")
    assert table.returncode == 0, table.stderr
    assert "gsm8k" in table.stdout and "0.8000" in table.stdout and "0.6000" in table.stdout
    assert "iquiz by subset" in table.stdout and "Output: " in table.stdout
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["result"]["gsm8k"]["score"] == pytest.approx(0.8)
    assert data["result"]["iquiz"]["subsets"]["IQ"]["scored"] == 3


def test_ctrl_c_cancels_keeps_predictions_and_tells_how_to_resume(tmp_path: Path) -> None:
    rows = [mcq_row(f"[S{i}]", "A") for i in range(6)]
    write_local_copy(tmp_path / "data" / "iquiz", {"IQ": {"test": rows}})
    answers = [{"match": f"[S{i}]", "reply": "答案：A"} for i in range(6)]
    with start_mock(answers=answers, ttft_ms=700, itl_ms=0) as mock:
        args = ["eval", "--model", "m", "--api-url", mock.base_url, "-d", "iquiz", "--dataset-dir",
                str(tmp_path / "data"), "--work-dir", str(tmp_path / "out"), "--no-preflight"]
        proc = subprocess.Popen([sys.executable, "-m", "evalsvc", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not list((tmp_path / "out").glob("*/iquiz/predictions/*/*.jsonl")):
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr
        (run_dir,) = (tmp_path / "out").iterdir()
        assert f"--use-cache {run_dir}" in stderr
        assert "cancelled" in stdout
        resumed = _cli(*args, "--use-cache", str(run_dir), "--json", "-q")
    assert resumed.returncode == 0, resumed.stderr
    data = json.loads(resumed.stdout)["result"]["iquiz"]
    assert (data["scored"], data["errored"], data["score"]) == (6, 0, 1.0)


def test_benchmarks_lists_the_catalogue() -> None:
    listed = _cli("benchmarks", "--json")
    assert listed.returncode == 0
    names = {e["name"]: e for e in json.loads(listed.stdout)}
    assert {"gsm8k", "iquiz", "ceval", "mmlu", "arc"} <= set(names)
    assert names["gsm8k"]["description"].startswith("GSM8K")
    table = _cli("benchmarks", "ceval", env={"COLUMNS": "120"})
    assert table.returncode == 0 and "ceval" in table.stdout and "C-Eval" in table.stdout
    assert "gsm8k" not in table.stdout


def _fake_result(status: str, **datasets: DatasetResult) -> Any:
    async def fake_run(config: EvalConfig, **_: Any) -> EvalResult:
        return EvalResult(status=status, output_dir="/tmp/x", model="m", datasets=datasets,
                          error=_describe(datasets) if status in ("incomplete", "failed") else None)
    return fake_run


def _describe(datasets: dict[str, DatasetResult]) -> str:
    from evalsvc.core.eval._result import describe_shortfall

    return describe_shortfall(datasets.values())


@pytest.mark.parametrize(("status", "code"), [("completed", 0), ("incomplete", 1), ("failed", 1), ("timeout", 1),
                                              ("cancelled", 130)])
def test_exit_code_is_zero_only_for_a_complete_run(status: str, code: int, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    clean = DatasetResult(name="gsm8k", score=0.5, metric="accuracy", requested=4, scored=4)
    errored = DatasetResult(name="iquiz", score=1.0, metric="accuracy", requested=5, scored=3, errored=2,
                            sample_errors=["Error code: 500 [boom]"])
    failed = DatasetResult(name="ceval", status="failed", error="all 2 samples errored", requested=2, errored=2)
    sets = {"completed": {"gsm8k": clean}, "incomplete": {"gsm8k": clean, "iquiz": errored},
            "failed": {"iquiz": errored, "ceval": failed}, "timeout": {"gsm8k": clean}, "cancelled": {"gsm8k": clean}}
    monkeypatch.setattr(evalsvc.core.eval, "run_eval_async", _fake_result(status, **sets[status]))
    with pytest.raises(SystemExit) as info:
        main(["eval", "--model", "m", "--api-url", "http://h/v1", "-d", "gsm8k", "-q", "--json"])
    assert info.value.code == code
    err = capsys.readouterr().err
    if status == "incomplete":
        assert _one_line(err) == ("Incomplete: iquiz: 2 of 5 samples errored (e.g. Error code: 500 [boom]); "
                                  "scores exclude them")
    if status == "failed":
        assert _one_line(err) == ("Failed: iquiz: 2 of 5 samples errored (e.g. Error code: 500 [boom]); "
                                  "ceval: all 2 samples errored; scores exclude them")


def test_every_sample_failing_exits_1_with_one_line(tmp_path: Path) -> None:
    write_local_copy(tmp_path / "data" / "iquiz", {"IQ": {"test": [mcq_row(f"[X{i}]", "A") for i in range(2)]}})
    with start_mock(error_500=1.0, ttft_ms=0, itl_ms=0) as mock:
        out = _cli("eval", "--model", "m", "--api-url", mock.base_url, "-d", "iquiz", "--dataset-dir",
                   str(tmp_path / "data"), "--work-dir", str(tmp_path / "out"), "--retries", "0", "--no-preflight",
                   "--json", "-q")
    assert out.returncode == 1, out.stderr
    line = _one_line(out.stderr)
    assert line.startswith("Failed: iquiz: all 2 samples errored (e.g. "), line
    assert json.loads(out.stdout)["status"] == "failed"
