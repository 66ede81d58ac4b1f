"""`evalsvc perf`: flags become a PerfConfig, bad input is one line and exit 2, results print as a table or JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import evalsvc.core.perf as perf_module
from evalsvc.cli import main
from evalsvc.core.config import PerfConfig
from evalsvc.core.perf import PerfResult, RunResult


def run_cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalsvc", "perf", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=env)


def test_help_is_fast_and_lists_the_flags() -> None:
    started = time.monotonic()
    result = run_cli("--help")
    assert result.returncode == 0
    for flag in ("--model", "--url", "--parallel", "--rate", "--number", "--dataset", "--workers", "--json"):
        assert flag in result.stdout
    assert time.monotonic() - started < 20  # generous: the point is no heavy imports (evalscope) on --help


@pytest.mark.parametrize(("args", "needle"), [
    (["--parallel", "-3"], "ConfigError: parallel: must be >= 1, got -3"),
    (["--url", "not a url"], "ConfigError: url: must be an http(s) URL"),
    (["--api", "grpc"], "ConfigError: api: must be one of openai, dashscope, anthropic, gemini; got 'grpc'"),
    (["--number", "ten"], "ConfigError: number: expected an integer, got 'ten'"),
    (["--rate", "0"], "ConfigError: rate: must be > 0"),
    (["--number", "1,2,3", "--parallel", "1,2"], "ConfigError: parallel: has 2 values but the sweep has 3"),
    (["--slo", "{bad"], "ConfigError: slo: is not valid JSON"),
    (["--dataset", "line_by_line"], "ConfigError: dataset_path: is required for dataset 'line_by_line'"),
    (["--bogus-flag"], "No such option: --bogus-flag"),
])
def test_invalid_input_is_one_line_and_exit_2(args: list[str], needle: str) -> None:
    result = run_cli("--model", "m", "--url", "http://127.0.0.1:9/v1/chat/completions", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr


def test_unreachable_endpoint_is_one_line_and_exit_1() -> None:
    result = run_cli("--model", "m", "--url", "http://127.0.0.1:9/v1/chat/completions", "--dataset", "random")
    assert result.returncode == 1
    assert result.stderr.strip() == "EndpointUnreachable: cannot connect to http://127.0.0.1:9 (Connection refused)"


def test_missing_dataset_file_is_exit_2(tmp_path: Path) -> None:
    result = run_cli("--model", "m", "--url", "http://127.0.0.1:9/v1/chat/completions", "--dataset", "custom",
                     "--dataset-path", str(tmp_path / "nope.jsonl"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("DatasetError: dataset_path: no such file")


def test_flags_become_the_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[PerfConfig] = []

    def fake_run_perf(config: PerfConfig, *, progress: Any = None) -> PerfResult:
        seen.append(config)
        run = RunResult(metrics={"requests_total": 1}, percentiles={})
        return PerfResult(output_dir=str(tmp_path), results={"parallel_1_number_1": run})

    monkeypatch.setattr(perf_module, "run_perf", fake_run_perf)
    with pytest.raises(SystemExit) as exit_info:
        main(["perf", "--model", "qwen", "--url", "http://h:8000/v1/chat/completions", "--number", "10,20",
              "--parallel", "1", "--parallel", "4", "--dataset", "random", "--prompt-tokens", "32",
              "--no-stream", "--slo", '{"ttft_ms": 500}', "--header", "X-Team: infra", "--api-key", "sk-x",
              "--json"])
    assert exit_info.value.code == 0
    (config,) = seen
    assert (config.number, config.parallel, config.rate) == ([10, 20], [1, 4], -1)
    assert config.stream is False and config.prompt_tokens == 32 and config.api_key == "sk-x"
    assert config.slo == {"ttft_ms": 500} and config.headers == {"X-Team": "infra"}
    printed = json.loads(capsys.readouterr().out)
    assert printed["results"]["parallel_1_number_1"]["metrics"]["requests_total"] == 1


def test_end_to_end_json_against_the_mock(mock_server: Any, tmp_path: Path) -> None:
    result = run_cli("--model", "mock-model", "--url", mock_server.chat_url, "--dataset", "random",
                     "--prompt-tokens", "8", "--number", "12", "--parallel", "3", "--work-dir", str(tmp_path),
                     "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    metrics = data["results"]["parallel_3_number_12"]["metrics"]
    assert metrics["requests_succeeded"] == 12 and metrics["output_tokens_source"] == "usage"
    assert Path(data["output_dir"]).parent == tmp_path.resolve()


def test_table_output(mock_server: Any, tmp_path: Path) -> None:
    result = run_cli("--model", "mock-model", "--url", mock_server.chat_url, "--dataset", "random",
                     "--prompt-tokens", "8", "--number", "5", "--work-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "parallel_1_number_5" in result.stdout and "TTFT" in result.stdout and "5 / 5" in result.stdout


def test_ctrl_c_stops_cleanly_and_keeps_the_measurements(mock_server: Any, tmp_path: Path) -> None:
    import signal

    proc = subprocess.Popen([sys.executable, "-m", "evalsvc", "perf", "--model", "mock-model", "--url",
                             mock_server.chat_url, "--dataset", "random", "--prompt-tokens", "8", "--number",
                             "100000", "--parallel", "2", "--work-dir", str(tmp_path), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("perf_*/config.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    data = json.loads(out)
    assert data["status"] == "interrupted"
    metrics = data["results"]["parallel_2_number_100000"]["metrics"]
    assert metrics["stopped_by"] == "interrupted" and metrics["requests_succeeded"] > 0
    (run_dir,) = tmp_path.glob("perf_*")
    saved = json.loads((run_dir / "summary.json").read_text())
    assert saved["results"]["parallel_2_number_100000"]["metrics"]["requests_total"] == metrics["requests_total"]
    lines = (run_dir / "requests_parallel_2_number_100000.jsonl").read_text().splitlines()
    assert len(lines) == metrics["requests_total"] + metrics["requests_unfinished"]


def test_several_client_processes_from_the_cli(mock_server: Any, tmp_path: Path) -> None:
    # client processes are fresh interpreters: they must not run the CLI a second time
    result = run_cli("--model", "mock-model", "--url", mock_server.chat_url, "--dataset", "random",
                     "--prompt-tokens", "8", "--number", "20", "--parallel", "4", "--workers", "2",
                     "--work-dir", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["results"]["parallel_4_number_20"]["metrics"]
    assert metrics["requests_succeeded"] == 20
    assert len(list(tmp_path.glob("perf_*"))) == 1  # one run directory: no second CLI run in a child


def test_a_client_process_dying_at_start_is_one_line_and_exit_1(mock_server: Any, tmp_path: Path) -> None:
    import os

    from evalsvc.core.perf._shards import CRASH_HOOK_ENV

    result = run_cli("--model", "mock-model", "--url", mock_server.chat_url, "--dataset", "random",
                     "--prompt-tokens", "8", "--number", "20", "--parallel", "4", "--workers", "2",
                     "--work-dir", str(tmp_path), env={**os.environ, CRASH_HOOK_ENV: "0"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # no traceback
    assert lines[0].startswith("ClientStartError: client process 1 of 2 (pid ")
    assert lines[0].endswith(f"ended before it was ready (exit code 70): {CRASH_HOOK_ENV}=0: "
                             "this client process crashes on purpose")
