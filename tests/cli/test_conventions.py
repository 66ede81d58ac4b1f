"""What a user expects of any command line tool: bare `evalsvc` helps, `--version` answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import evalsvc
from tests._evaldata import gsm8k_row, write_local_copy
from tests._servers import QuietHandler, serve_http


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalsvc", *args], check=False, capture_output=True, text=True,
                          timeout=60)


def test_bare_evalsvc_prints_the_help_and_exits_0() -> None:
    bare = run_cli()
    assert bare.returncode == 0, bare.stderr
    assert "Usage:" in bare.stdout and "perf" in bare.stdout and "eval" in bare.stdout
    assert bare.stderr == ""  # was: "Error:  (see '... --help')" and exit 2
    assert bare.stdout == run_cli("--help").stdout


def test_version() -> None:
    out = run_cli("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"evalsvc {evalsvc.__version__}\n"
    assert "--version" in run_cli("--help").stdout


def test_unknown_command_is_still_a_usage_error() -> None:
    out = run_cli("nope")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [out.stderr.strip()] and "No such command 'nope'" in out.stderr


def test_perf_and_eval_read_the_api_key_from_evalsvc_api_key(tmp_path: Path) -> None:
    # Both commands take --api-key or EVALSVC_API_KEY (the README's "API keys" section).
    seen: list[str | None] = []
    answer = json.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "OK"},
                                      "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}).encode()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            self.read_body()
            seen.append(self.headers.get("Authorization"))
            self.answer(answer)

    env = {**os.environ, "EVALSVC_API_KEY": "sk-env-0123456789"}
    with serve_http(Handler) as root:
        base = f"{root}/v1"
        perf = subprocess.run([sys.executable, "-m", "evalsvc", "perf", "--model", "m",
                               "--url", f"{base}/chat/completions", "--dataset", "random", "--prompt-tokens", "4",
                               "--max-tokens", "1", "--no-stream",
                               "--number", "2", "--work-dir", str(tmp_path / "perf"), "--json"],
                              check=False, capture_output=True, text=True, timeout=120, env=env)
        assert perf.returncode == 0, perf.stderr
        assert seen and set(seen) == {"Bearer sk-env-0123456789"}
        seen.clear()
        write_local_copy(tmp_path / "data" / "gsm8k", {"main": {"test": [gsm8k_row("[A]", "1+1?", 2)]}})
        evaluation = subprocess.run([sys.executable, "-m", "evalsvc", "eval", "--model", "m", "--api-url", base,
                                     "--datasets", "gsm8k", "--dataset-dir", str(tmp_path / "data"),
                                     "--dataset-args", '{"gsm8k": {"few_shot_num": 0}}', "--quiet",
                                     "--work-dir", str(tmp_path / "eval")],
                                    check=False, capture_output=True, text=True, timeout=180, env=env)
        assert evaluation.returncode == 0, evaluation.stderr
        assert len(seen) == 2 and set(seen) == {"Bearer sk-env-0123456789"}  # the preflight, then the sample
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert "sk-env-0123456789" not in path.read_text(errors="replace"), path
