"""`evalsvc perf` against an endpoint that refuses it: one line quoting the server and exit 1 before the run;
with --no-preflight, a run in which nothing succeeded is `failed`, exits 1 and still writes every file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests._gate import start_gate

KEY = "sk-good-key-123456"
WRONG = "sk-wrong-key-987654"


def perf(gate_url: str, tmp_path: Path, *args: str, env_key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EVALSVC_API_KEY"}
    if env_key is not None:
        env["EVALSVC_API_KEY"] = env_key
    return subprocess.run([sys.executable, "-m", "evalsvc", "perf", "--model", "m", "--url", gate_url,
                           "--dataset", "random", "--prompt-tokens", "8", "--max-tokens", "32", "--number", "5",
                           "--parallel", "2", "--work-dir", str(tmp_path / "out"), *args],
                          capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL, env=env)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_base_url_is_one_line_with_the_path_to_use_and_exit_1(tmp_path: Path) -> None:
    with start_gate(key=KEY) as gate:
        result = perf(gate.base_url, tmp_path, "--api-key", KEY)
        assert gate.total == 1  # stopped after the test request: the 5 requests of the run were never sent
    assert result.returncode == 1
    assert one_line(result) == (f"EndpointStatusError: {gate.base_url} answered the test request with HTTP 404: "
                                f"404: Not Found; for api openai use the complete endpoint URL, e.g. {gate.chat_url}")
    assert not (tmp_path / "out").exists()


def test_missing_key_is_one_line_quoting_the_401_and_exit_1(tmp_path: Path) -> None:
    with start_gate(key=KEY) as gate:
        result = perf(gate.chat_url, tmp_path)
        assert gate.total == 1
    assert result.returncode == 1
    line = one_line(result)
    assert line.startswith(f"EndpointStatusError: {gate.chat_url} answered the test request with HTTP 401: ")
    assert "You didn't provide an API key." in line
    assert line.endswith("no API key was sent: pass one with --api-key or EVALSVC_API_KEY (api_key)")


def test_refused_key_from_the_environment_is_never_printed(tmp_path: Path) -> None:
    with start_gate(key=KEY) as gate:
        result = perf(gate.chat_url, tmp_path, env_key=WRONG)
        assert gate.bodies and gate.total == 1
    assert result.returncode == 1
    assert "the API key was refused" in one_line(result) and "Incorrect API key provided: ***." in result.stderr
    assert WRONG not in result.stderr + result.stdout


def _only_run_dir(tmp_path: Path) -> Path:
    (run_dir,) = (tmp_path / "out").iterdir()
    return run_dir


def test_no_preflight_runs_and_a_run_without_success_fails_with_exit_1(tmp_path: Path) -> None:
    with start_gate(key=KEY) as gate:
        result = perf(gate.base_url, tmp_path, "--api-key", KEY, "--no-preflight", "--json")
        assert gate.total == 5  # every request of the run, and no test request
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "evalsvc perf: failed: no request succeeded (http_404: 5)"
    printed = json.loads(result.stdout)
    assert printed["status"] == "failed" and printed["error"] == "no request succeeded (http_404: 5)"
    run_dir = _only_run_dir(tmp_path)
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "config.json", "report.html", "report.txt", "requests_parallel_2_number_5.jsonl",
        "summary.json", "summary_parallel_2_number_5.json"]
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
    assert len((run_dir / "requests_parallel_2_number_5.jsonl").read_text().splitlines()) == 5


def test_a_good_endpoint_passes_the_preflight_and_the_test_request_is_not_measured(tmp_path: Path) -> None:
    with start_gate(key=KEY) as gate:
        result = perf(gate.chat_url, tmp_path, "--json", env_key=KEY)
        assert gate.total == 6
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["results"]["parallel_2_number_5"]["metrics"]
    assert metrics["requests_total"] == 5 and metrics["requests_succeeded"] == 5
