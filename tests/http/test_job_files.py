"""A job's files: deletion, retention, the output directory of a killed run, clean job logs (issue 9.8)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evalsvc.core.jobs import PathPolicy
from tests.http._live import Live, service_process
from tests.http.conftest import perf_body


def _finished_job(service: Live, outputs: Path, **fields: Any) -> dict[str, Any]:
    r = service.client.post("/api/v1/perf", json=perf_body(**fields))
    assert r.status_code == 200, r.text
    job = service.client.get(f"/api/v1/jobs/{r.json()['job_id']}").json()["job"]
    assert job["output_dir"] and Path(job["output_dir"]).is_dir()
    assert (outputs / ".evalsvc" / "logs" / f"{job['id']}.log").exists()
    return job


def test_delete_removes_a_finished_jobs_files_and_record(service_factory: Callable[..., Live],
                                                         tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    service = service_factory()
    job = _finished_job(service, outputs)
    keep = _finished_job(service, outputs)
    r = service.client.delete(f"/api/v1/jobs/{job['id']}")
    assert r.status_code == 200 and r.json()["job"]["id"] == job["id"]
    assert not Path(job["output_dir"]).exists()
    assert not (outputs / ".evalsvc" / "logs" / f"{job['id']}.log").exists()
    assert service.client.get(f"/api/v1/jobs/{job['id']}").status_code == 404
    assert service.client.delete(f"/api/v1/jobs/{job['id']}").status_code == 404
    assert Path(keep["output_dir"]).is_dir()  # other jobs are untouched
    assert service.client.get("/api/v1/jobs").json()["total"] == 1
    # a running job is not deleted
    running = service.client.post("/api/v1/jobs/perf", json=perf_body(model="fake-slow")).json()["job_id"]
    service.wait_state(running, ("running",))
    r = service.client.delete(f"/api/v1/jobs/{running}")
    assert r.status_code == 409 and "cancel it" in r.json()["message"]
    service.client.post(f"/api/v1/jobs/{running}/cancel")
    service.wait_state(running, ("cancelled",))
    assert service.client.delete(f"/api/v1/jobs/{running}").status_code == 200


def test_only_paths_strictly_inside_the_outputs_root_are_removable(tmp_path: Path) -> None:
    # a record pointing at the outputs root itself (or outside it) never makes DELETE remove it
    policy = PathPolicy(tmp_path / "out")
    assert policy.removable(policy.outputs_root) is None
    assert policy.removable(tmp_path) is None
    assert policy.removable(policy.state_dir) is None
    assert policy.removable(policy.outputs_root / "..") is None
    (policy.outputs_root / "run").mkdir(parents=True)
    assert policy.removable(policy.outputs_root / "run") == policy.outputs_root / "run"


def test_keep_days_deletes_old_finished_jobs(service_factory: Callable[..., Live], tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    service = service_factory(keep_days=2 / 86400)  # two seconds
    job = _finished_job(service, outputs)
    deadline = time.monotonic() + 60
    while service.client.get(f"/api/v1/jobs/{job['id']}").status_code != 404:
        assert time.monotonic() < deadline, "the finished job was not deleted by the retention"
        time.sleep(0.2)
    assert not Path(job["output_dir"]).exists()


def test_an_interrupted_perf_jobs_output_dir_survives_kill_9(tmp_path: Path, mock_factory: Any) -> None:
    # the real engine: it says where it writes as soon as the run directory exists
    mock = mock_factory(ttft_ms=20, itl_ms=0, output_tokens=4)
    outputs = tmp_path / "outputs"
    body = {"model": "mock-model", "url": mock.chat_url, "dataset": "random", "prompt_tokens": 8, "max_tokens": 4,
            "number": 100000, "parallel": 2}
    with service_process(outputs) as live:
        job_id = live.client.post("/api/v1/jobs/perf", json=body).json()["job_id"]
        live.wait_progress(job_id)
        output_dir = live.client.get(f"/api/v1/jobs/{job_id}").json()["job"]["output_dir"]
        assert output_dir
        assert live.process is not None
        live.process.send_signal(signal.SIGKILL)
        live.process.wait(10)
    with service_process(outputs) as live:
        job = live.client.get(f"/api/v1/jobs/{job_id}").json()["job"]
        assert job["state"] == "interrupted"
        assert job["output_dir"] == output_dir and Path(output_dir).is_dir()
        log = (outputs / ".evalsvc" / "logs" / f"{job_id}.log").read_text()
        assert "RuntimeWarning" not in log and "Traceback" not in log, log[:500]
