"""The example scripts run as written against local servers and print what they promise."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests._evaldata import small_suite

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                          timeout=240, stdin=subprocess.DEVNULL, check=False)


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


def test_quickstart_notebook_runs_in_a_real_jupyter_kernel(tmp_path: Path) -> None:
    """Every cell of examples/quickstart.ipynb in an ipykernel, as Jupyter runs it: inside a running event loop.

    run_perf used to fail there ("Cannot run the event loop while another loop is running"); exec-ing the
    cells in a plain interpreter cannot see that.
    """
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")

    notebook = nbformat.read(str(EXAMPLES / "quickstart.ipynb"), as_version=4)
    # One extra cell, before the mock is stopped, reports what the notebook computed.
    check = nbformat.v4.new_code_cell(
        "import json, asyncio\n"
        "print('CHECK ' + json.dumps({'loop_running': asyncio.get_event_loop().is_running(),\n"
        "    'perf_status': result.status, 'perf_ok': run.metrics['requests_succeeded'],\n"
        "    'eval_status': evaluation.status, 'eval_score': evaluation['gsm8k'].score,\n"
        "    'eval_scored': evaluation['gsm8k'].scored, 'outputs': [result.output_dir, evaluation.output_dir]}))")
    notebook.cells.insert(len(notebook.cells) - 1, check)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell's traceback, if any cell fails

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    (line,) = [ln for ln in text.splitlines() if ln.startswith("CHECK ")]
    seen = json.loads(line[len("CHECK "):])
    assert seen["loop_running"]  # the cells really ran under a running loop
    assert (seen["perf_status"], seen["perf_ok"]) == ("completed", 32)
    assert (seen["eval_status"], seen["eval_scored"]) == ("completed", 3)
    assert seen["eval_score"] == pytest.approx(2 / 3, abs=1e-4)
    for out_dir in seen["outputs"]:
        assert Path(out_dir, "summary.json").is_file() and Path(out_dir).is_relative_to(tmp_path)
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("parallel_8_number_32" in h for h in html)  # the perf result's tables
    assert any("gsm8k" in h and "0.6667" in h for h in html)  # the eval result's score table


def test_interrupting_the_kernel_stops_run_perf_gracefully(mock_server: Any, tmp_path: Path) -> None:
    """The kernel's interrupt button (SIGINT) once: the run stops, writes its outputs and the cell gets the result."""
    jupyter_client = pytest.importorskip("jupyter_client")
    pytest.importorskip("ipykernel")

    started = tmp_path / "started"
    code = (
        "from pathlib import Path\n"
        "from evalsvc import PerfConfig, run_perf\n"
        "def progress(event):\n"
        "    if event['type'] == 'progress' and event['done'] >= 20:\n"
        f"        Path({str(started)!r}).touch()\n"
        f"result = run_perf(PerfConfig(model='mock-model', url={mock_server.chat_url!r}, dataset='random',\n"
        "    prompt_tokens=8, max_tokens=4, number=10_000_000, parallel=2, work_dir=" f"{str(tmp_path)!r}),"
        " progress=progress)\n"
        "m = result['parallel_2_number_10000000'].metrics\n"
        "print('RESULT', result.status, m['stopped_by'], m['requests_succeeded'] >= 20, flush=True)\n"
    )
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        msg_id = kc.execute(code)
        deadline = time.monotonic() + 120
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), "the load test did not start"
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=120)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=120)
        assert reply["content"]["status"] == "ok", reply["content"]
        printed = ""
        while True:
            msg = kc.get_iopub_msg(timeout=30)
            if msg["msg_type"] == "stream":
                printed += msg["content"]["text"]
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle" \
                    and msg["parent_header"].get("msg_id") == msg_id:
                break
        assert "RESULT interrupted interrupted True" in printed, printed
        (summary,) = tmp_path.glob("perf_*/summary.json")
        assert json.loads(summary.read_text())["status"] == "interrupted"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
