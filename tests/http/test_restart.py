"""Jobs outlive the service process: kill -9 and graceful stops, then a restart on the same outputs root."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.http._live import FAKE_TARGETS, service_process
from tests.http.conftest import perf_body

FAKE_SERVICE = ("from evalsvc.http import run_service; "
                f"run_service('127.0.0.1', PORT, outputs=OUTPUTS, targets={FAKE_TARGETS!r}, cancel_grace_s=5)")


def _summaries(root: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in root.glob("*/summary.json")]


def test_kill_9_mid_job_then_restart_reads_interrupted_and_keeps_history(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    with service_process(outputs, script=FAKE_SERVICE) as live:
        done = live.client.post("/api/v1/perf", json=perf_body(number=[10, 20], parallel=[1, 2]))
        assert done.status_code == 200
        before = done.json()
        job_id = live.client.post("/api/v1/jobs/perf", json=perf_body(model="fake-slow")).json()["job_id"]
        live.wait_progress(job_id)
        assert live.process is not None
        live.process.send_signal(signal.SIGKILL)
        live.process.wait(10)

    # the orphaned worker notices its service is gone and stops its run the way a cancel does
    deadline = time.monotonic() + 30
    while not any(s["status"] == "interrupted" for s in _summaries(outputs)):
        assert time.monotonic() < deadline, "the worker of the killed service did not stop"
        time.sleep(0.1)

    with service_process(outputs, script=FAKE_SERVICE) as live:
        job = live.client.get(f"/api/v1/jobs/{job_id}").json()["job"]
        assert job["state"] == "interrupted"
        assert job["error"]["type"] == "Interrupted" and job["finished_at"]
        result = live.client.get(f"/api/v1/jobs/{job_id}/result")
        assert result.status_code == 503 and result.json()["state"] == "interrupted"
        again = live.client.get(f"/api/v1/jobs/{before['job_id']}/result")
        assert again.status_code == 200 and again.json() == before
        assert live.client.get("/health").json()["jobs"]["running"] == 0
        states = {j["id"]: j["state"] for j in live.client.get("/api/v1/jobs").json()["jobs"]}
        assert states == {before["job_id"]: "completed", job_id: "interrupted"}
        # and the restarted service runs new jobs
        assert live.client.post("/api/v1/perf", json=perf_body()).status_code == 200


def test_sigterm_stops_running_jobs_cleanly(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    answers: list[httpx.Response] = []
    with service_process(outputs, script=FAKE_SERVICE) as live:
        queued_behind = None

        def blocking() -> None:
            with httpx.Client(base_url=live.base_url, trust_env=False, timeout=60) as client:
                answers.append(client.post("/api/v1/perf", json=perf_body(model="fake-slow")))

        thread = threading.Thread(target=blocking)
        thread.start()
        deadline = time.monotonic() + 30
        while not live.client.get("/api/v1/jobs", params={"state": "running"}).json()["jobs"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        job_id = live.client.get("/api/v1/jobs").json()["jobs"][0]["id"]
        live.wait_progress(job_id)
        queued_behind = live.client.post("/api/v1/jobs/perf", json=perf_body()).json()["job_id"]
        assert live.process is not None
        t0 = time.monotonic()
        live.process.send_signal(signal.SIGTERM)
        assert live.process.wait(30) == 0 or live.process.returncode == -signal.SIGTERM
        assert time.monotonic() - t0 < 20
        thread.join(30)
    assert len(answers) == 1 and answers[0].status_code == 503
    body = answers[0].json()
    assert body["state"] == "interrupted" and body["message"] == "Performance test was interrupted: the service stopped"
    assert body["output_dir"] and isinstance(body["results"], dict)  # what was measured is kept

    with service_process(outputs, script=FAKE_SERVICE) as live:
        job = live.client.get(f"/api/v1/jobs/{job_id}").json()["job"]
        assert job["state"] == "interrupted" and job["has_result"] is True
        behind = live.client.get(f"/api/v1/jobs/{queued_behind}").json()["job"]
        assert behind["state"] == "interrupted" and behind["started_at"] is None


def test_second_service_on_the_same_outputs_root_is_refused(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    with service_process(outputs, script=FAKE_SERVICE) as live:
        import subprocess
        import sys

        second = subprocess.run([sys.executable, "-m", "evalsvc", "service", "--host", "127.0.0.1", "--port", "0",
                                 "--outputs", str(outputs)], capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert second.stderr.strip().splitlines()[-1].startswith("RunnerLocked: another evalsvc service")
        assert "Traceback" not in second.stderr
        assert live.client.get("/health").status_code == 200
