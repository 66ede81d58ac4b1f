"""`evalsvc mock`: flags become a MockConfig, bad values are one line and exit 2, Ctrl-C stops cleanly."""

from __future__ import annotations

import dataclasses
import json
import signal
import socket
import subprocess
import sys
from typing import Any

import httpx
import pytest

import evalsvc.core.mock as mock_module
from evalsvc.cli import main
from evalsvc.core.mock import MockConfig
from tests._servers import start_mock


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalsvc", "mock", *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("args", "needle"), [
    (["--ttft-ms", "-1"], "ConfigError: ttft_ms: must be >= 0"),
    (["--error-500", "1.5"], "ConfigError: error_500: must be <= 1"),
    (["--error-500", "0.6", "--no-done", "0.6"], "must not exceed 1"),
    (["--output-tokens", "0"], "ConfigError: output_tokens"),
    (["--answers", "/no/such/file.jsonl"], "ConfigError: answers: file not found"),
    (["--ttft-ms", "abc"], "--ttft-ms"),
    (["--bogus"], "--bogus"),
])
def test_bad_values_print_one_line_and_exit_2(args: list[str], needle: str) -> None:
    result = run_cli("--port", "0", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_port_in_use_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_cli("--port", str(taken.getsockname()[1]))
    assert result.returncode == 2
    assert result.stderr.startswith("ConfigError: port: cannot listen on 127.0.0.1:")


def _capture(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> MockConfig:
    seen: list[MockConfig] = []

    def fake_run_mock(cfg: MockConfig, *, on_ready: Any = None) -> dict[str, Any]:
        seen.append(cfg)
        on_ready("http://127.0.0.1:1234/v1")
        return {}

    monkeypatch.setattr(mock_module, "run_mock", fake_run_mock)
    with pytest.raises(SystemExit) as info:
        main(["mock", *argv])
    assert info.value.code == 0
    return seen[0]


def test_flags_become_the_config(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                 tmp_path: Any) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps([{"match": "q", "reply": "a"}]))
    cfg = _capture(monkeypatch, [
        "--host", "0.0.0.0", "--port", "0", "--model", "tiny", "--ttft-ms", "50", "--itl-ms", "5",
        "--output-tokens", "64", "--tokens-per-chunk", "2", "--jitter-ms", "1.5", "--no-role-chunk",
        "--separate-finish-chunk", "--seed", "9", "--fault-cycle", "200", "--error-500", "0.1", "--error-429", "0.05",
        "--drop-mid-stream", "0.02", "--malformed-sse", "0.03", "--no-done", "0.04", "--empty-completion", "0.06",
        "--retry-after-s", "3", "--answers", str(answers), "--max-batch", "16", "--itl-per-request-ms", "0.5",
        "--prefill-ms-per-token", "0.01", "--cache-tokens", "4096", "--cache-block-tokens", "32",
        "--capture-requests",
    ])
    assert dataclasses.asdict(cfg) == {
        "host": "0.0.0.0", "port": 0, "model": "tiny", "ttft_ms": 50.0, "itl_ms": 5.0, "output_tokens": 64,
        "tokens_per_chunk": 2, "jitter_ms": 1.5, "role_chunk": False, "separate_finish_chunk": True, "seed": 9,
        "fault_cycle": 200, "error_500": 0.1, "error_429": 0.05, "drop_mid_stream": 0.02, "malformed_sse": 0.03,
        "no_done": 0.04, "empty_completion": 0.06, "retry_after_s": 3, "answers": str(answers), "max_batch": 16,
        "itl_per_request_ms": 0.5, "prefill_ms_per_token": 0.01, "cache_tokens": 4096, "cache_block_tokens": 32,
        "capture_requests": True,
    }
    assert cfg.answer_rows() == (("q", "a"),)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "evalsvc mock: serving on http://127.0.0.1:1234/v1"


def test_cli_defaults_are_the_config_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _capture(monkeypatch, []) == MockConfig()


def test_sigint_stops_cleanly_and_reports() -> None:
    with start_mock(ttft_ms=0, itl_ms=0, error_500=0.5, fault_cycle=2) as mock:
        with httpx.Client(trust_env=False) as client:
            statuses = sorted(client.post(mock.chat_url, json={"messages": [{"role": "user", "content": "hi"}]})
                              .status_code for _ in range(4))
        assert statuses == [200, 200, 500, 500]
        mock.process.send_signal(signal.SIGINT)
        assert mock.process.wait(timeout=10) == 0
        err = mock.stderr_path.read_text()
    assert err.strip() == "evalsvc mock: stopped after 4 requests (faults: error_500 2)"
