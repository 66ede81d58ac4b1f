"""The example scripts run as written against local servers and print what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests._evaldata import small_suite

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                          timeout=240, stdin=subprocess.DEVNULL)


def test_perf_sweep_example(mock_server: Any, tmp_path: Path) -> None:
    result = run("perf_sweep.py", "--url", mock_server.chat_url, "--parallel", "1,2",
                 "--requests-per-slot", "2", "--work-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "parallel_1_number_2" in result.stdout and "parallel_2_number_4" in result.stdout


def test_eval_example(mock_factory: Any, tmp_path: Path) -> None:
    suite = small_suite(tmp_path / "datasets")
    mock = mock_factory(ttft_ms=0, itl_ms=0, answers=suite.answers)
    result = run("eval_local.py", "--api-url", mock.base_url, "--dataset-dir", str(suite.dataset_dir),
                 "--datasets", "gsm8k", "iquiz", "--work-dir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "gsm8k" in result.stdout and "scored 5/5" in result.stdout
    assert "accuracy=0.8" in result.stdout and "accuracy=0.6" in result.stdout


def test_notebook_cells_run_in_order(tmp_path: Path, monkeypatch: Any) -> None:
    import json

    monkeypatch.chdir(tmp_path)
    notebook = json.loads((EXAMPLES / "quickstart.ipynb").read_text())
    scope: dict[str, Any] = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), "quickstart.ipynb", "exec"), scope)  # noqa: S102
    result = scope["result"]
    assert result.status == "completed"
    assert result.results["parallel_8_number_32"].metrics["requests_succeeded"] == 32
    assert "<table>" in result._repr_html_()
