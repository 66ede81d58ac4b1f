"""schemathesis against /openapi.json (benchmarks/fuzz_service.py, short budget): no 5xx, every check holds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_service.py"


@pytest.mark.timeout(600)
def test_fuzzed_requests_never_get_a_5xx() -> None:
    run = subprocess.run([sys.executable, str(SCRIPT), "-n", "8", "--phases", "examples,fuzzing", "--json"],
                         capture_output=True, text=True, timeout=580)
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert figures["requests"] >= 50, figures
    assert figures["server_errors"] == 0 and figures["internal_errors_logged"] == 0, figures
    assert figures["failures"] == {}, figures["output_tail"]
    assert figures["by_class"].get("2xx", 0) > 0 and figures["by_class"].get("4xx", 0) > 0
    assert run.returncode == 0
