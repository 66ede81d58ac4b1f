"""`evalsvc capacity`: bad input is one line and exit 2; a search prints one table and writes the run directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

URL = "http://127.0.0.1:9/v1/chat/completions"


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalsvc", "capacity", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("args", "needle"), [
    (["--slo", "{}"], "ConfigError: slo: needs at least one threshold"),
    ([], "ConfigError: slo: is required"),
    (["--slo", '{"ttft_ms": 120}', "--attainment", "0"], "ConfigError: attainment: must be > 0, got 0.0"),
    (["--slo", '{"ttft_ms": 120}', "--attainment", "1.2"], "ConfigError: attainment: must be <= 1, got 1.2"),
    (["--slo", '{"ttft_ms": 120}', "--low", "64", "--high", "8"],
     "ConfigError: high: must be >= low (64), got 8: the search range is inverted"),
    (["--slo", '{"ttft_ms": 120}', "--search", "rate", "--low", "40", "--high", "20"],
     "ConfigError: high: must be >= low (40), got 20"),
    (["--slo", '{"ttfb_ms": 120}'], "ConfigError: slo: unknown key 'ttfb_ms'"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str) -> None:
    proc = run_cli("--model", "m", "--url", URL, *args, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(needle), proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_lists_the_search_options_and_not_the_ones_it_sets() -> None:
    proc = run_cli("--help", timeout=60)
    assert proc.returncode == 0
    for flag in ("--slo", "--attainment", "--search", "--low", "--high", "--max-probes", "--max-seconds",
                 "--confidence", "--max-repeats", "--no-early-stop", "--no-auto-workers", "--workers", "--dataset"):
        assert flag in proc.stdout, flag
    assert "--rate " not in proc.stdout and "--num-runs" not in proc.stdout


def test_search_prints_one_table_and_exits_0(mock_factory: object, tmp_path: Path) -> None:
    # 4 slots held 100 + 7 x 30 = 310 ms: a 5th client waits 310 / 4 = 77 ms on average (or 310 ms in waves),
    # more than the SLO's 60 ms of headroom, which is also wide enough for a busy test machine's stalls
    mock = mock_factory(max_batch=4, ttft_ms=100, itl_ms=30, output_tokens=8)  # type: ignore[operator]
    common = ["--model", "mock-model", "--url", mock.chat_url, "--dataset", "random", "--prompt-tokens", "8",
              "--max-tokens", "8", "--slo", '{"ttft_ms": 160}', "--number", "80", "--max-repeats", "1",
              "--work-dir", str(tmp_path)]
    proc = run_cli(*common, "--low", "2", "--high", "16")
    assert proc.returncode == 0, proc.stderr
    assert "capacity search: one row per probe run" in proc.stdout
    assert "capacity: 4 concurrent requests" in proc.stdout
    assert "[capacity] 4: pass" in proc.stderr  # a line per value judged while searching
    as_json = run_cli(*common, "--low", "4", "--high", "4", "--json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["capacity"]["value"] == 4 and data["status"] == "completed"
    assert data["capacity"]["ended"] == "above_range"
    assert Path(data["output_dir"], "report.html").is_file()
