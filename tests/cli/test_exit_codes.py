"""`evalsvc perf` and `evalsvc eval` exit with the same code for the same outcome (evalsvc.core.status.EXIT_CODE)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import evalsvc.core.eval as eval_module
import evalsvc.core.perf as perf_module
from evalsvc.cli import main
from evalsvc.core.eval import DatasetResult, EvalResult
from evalsvc.core.perf import PerfResult, RunResult

EXPECTED = {"completed": 0, "incomplete": 1, "failed": 1, "timeout": 1, "interrupted": 130, "cancelled": 130}

_METRICS = {"requests_total": 2, "requests_succeeded": 2, "requests_failed": 0, "failures_by_kind": {}}


def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return int(info.value.code or 0)


@pytest.mark.parametrize("status", sorted(EXPECTED))
def test_same_status_same_exit_code_for_perf_and_eval(status: str, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    error = None if status == "completed" else f"the run ended {status}"

    def fake_run_perf(config: Any, **_: Any) -> PerfResult:
        return PerfResult(output_dir="/tmp/x", status=status, error=error,
                          results={"parallel_1_number_2": RunResult(metrics=dict(_METRICS), percentiles={})})

    async def fake_run_eval(config: Any, **_: Any) -> EvalResult:
        return EvalResult(status=status, output_dir="/tmp/x", error=error, model="m",
                          datasets={"gsm8k": DatasetResult(name="gsm8k", score=1.0, requested=2, scored=2)})

    monkeypatch.setattr(perf_module, "run_perf", fake_run_perf)
    monkeypatch.setattr(eval_module, "run_eval_async", fake_run_eval)
    perf = _exit_code(["perf", "--model", "m", "--url", "http://h/v1/chat/completions", "--dataset", "random",
                       "--json"])
    evaluation = _exit_code(["eval", "--model", "m", "--api-url", "http://h/v1", "-d", "gsm8k", "-q", "--json"])
    assert perf == evaluation == EXPECTED[status]
    capsys.readouterr()


def test_perf_with_a_failed_run_prints_why_in_the_table_output(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    def fake_run_perf(config: Any, **_: Any) -> PerfResult:
        return PerfResult(output_dir="/tmp/x", status="failed", error="client process evalsvc-perf-1 exited (-9)",
                          results={"parallel_1_number_2": RunResult(metrics=dict(_METRICS), percentiles={})})

    monkeypatch.setattr(perf_module, "run_perf", fake_run_perf)
    assert _exit_code(["perf", "--model", "m", "--url", "http://h/v1/chat/completions", "--dataset", "random"]) == 1
    out = capsys.readouterr().out
    assert "failed (client process evalsvc-perf-1 exited (-9)); outputs in /tmp/x" in " ".join(out.split())


def _client_processes(pid: int) -> list[int]:
    """The perf client processes (perf/_shards.py's `main`, started through core/_proc.py) of process `pid`."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"evalsvc.core.perf._shards:main" in cmdline:
                found.append(int(child))
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_perf_exits_1_when_a_client_process_dies(mock_factory: Any, tmp_path: Path) -> None:
    # It used to exit 0 with status "failed"; eval exits 1 for a failed run: same outcome, same code.
    mock = mock_factory(ttft_ms=5, itl_ms=1, output_tokens=4)
    proc = subprocess.Popen([sys.executable, "-m", "evalsvc", "perf", "--model", "mock-model", "--url",
                             mock.chat_url, "--dataset", "random", "--prompt-tokens", "8", "--max-tokens", "4",
                             "--number", "1000000", "--parallel", "4", "--workers", "2", "--work-dir",
                             str(tmp_path), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        clients: list[int] = []
        # The clients send only once both are ready: requests reaching the mock mean the load is running.
        while time.monotonic() < deadline and proc.poll() is None:
            clients = _client_processes(proc.pid)
            if len(clients) == 2 and mock.stats()["requests"] > 20:
                break
            time.sleep(0.1)
        assert len(clients) == 2, proc.communicate(timeout=60)
        os.kill(clients[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert out, err
    data = json.loads(out)
    assert data["status"] == "failed" and "client process" in data["error"]
