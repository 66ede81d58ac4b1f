"""What operators see: request ids, /metrics (Prometheus text), job logs and reports, structured log lines."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from evalsvc.core.jobs import PathPolicy
from tests._servers import start_mock
from tests.http._live import Live, client_for, service_process
from tests.http.conftest import perf_body


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition, parsed by prometheus-client's own parser."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_request_id_is_echoed_kept_with_the_job_and_written_atop_its_log(service: Live) -> None:
    r = service.client.post("/api/v1/jobs/perf", json=perf_body(), headers={"X-Request-ID": "ci-run-42"})
    assert r.status_code == 202 and r.headers["x-request-id"] == "ci-run-42"
    job_id = r.json()["job_id"]
    job = service.wait_state(job_id, ("completed",))
    assert job["request_id"] == "ci-run-42"
    log = service.client.get(f"/api/v1/jobs/{job_id}/log")
    assert log.status_code == 200 and log.headers["content-type"].startswith("text/plain")
    first = log.text.splitlines()[0]
    assert f"evalsvc job {job_id} (perf) request_id=ci-run-42" in first
    assert log.headers["x-log-truncated"] == "false"
    tail = service.client.get(f"/api/v1/jobs/{job_id}/log", params={"max_bytes": 5})
    assert tail.headers["x-log-truncated"] == "true" and "request_id=ci-run-42" not in tail.text
    # an id that is not sane (too long, odd characters) is replaced by a fresh one; none given: one is made
    for headers in ({"X-Request-ID": "x" * 200}, {"X-Request-ID": "a b"}, {}):
        got = service.client.get("/health", headers=headers).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", got), got
    assert service.client.get("/api/v1/jobs/nope/log").status_code == 404
    assert service.client.get(f"/api/v1/jobs/{job_id}/log", params={"max_bytes": 0}).status_code == 400


def test_report_is_served_from_the_jobs_output_dir_only(service: Live, tmp_path: Path) -> None:
    job_id = service.client.post("/api/v1/perf", json=perf_body()).json()["job_id"]
    job = service.client.get(f"/api/v1/jobs/{job_id}").json()["job"]
    r = service.client.get(f"/api/v1/jobs/{job_id}/report")
    assert r.status_code == 404 and r.json()["message"] == f"job {job_id} has no report.html"
    Path(job["output_dir"], "report.html").write_text("<html><body>the report</body></html>")
    r = service.client.get(f"/api/v1/jobs/{job_id}/report")
    assert r.status_code == 200 and r.text == "<html><body>the report</body></html>"
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == "sandbox allow-scripts"
    # a report.html that is a symlink out of the run directory is not served
    secret = tmp_path / "secret.html"
    secret.write_text("secret")
    Path(job["output_dir"], "report.html").unlink()
    Path(job["output_dir"], "report.html").symlink_to(secret)
    assert service.client.get(f"/api/v1/jobs/{job_id}/report").status_code == 404
    policy = PathPolicy(tmp_path / "outputs")
    assert policy.job_file(str(tmp_path), "secret.html") is None  # a directory outside the outputs root


def test_compare_names_the_missing_or_unusable_job(service: Live) -> None:
    done = service.client.post("/api/v1/perf", json=perf_body()).json()["job_id"]
    running = service.client.post("/api/v1/jobs/perf", json=perf_body(model="fake-slow")).json()["job_id"]
    r = service.client.get("/api/v1/compare", params={"base": running, "new": done})
    assert r.status_code == 400 and r.json()["error"]["field"] == "base"  # running: no run directory yet
    r = service.client.get("/api/v1/compare", params={"base": done})
    assert r.status_code == 400 and r.json()["error"]["field"] == "new"
    assert service.client.get("/api/v1/compare", params={"base": done, "new": "nope"}).status_code == 404
    r = service.client.get("/api/v1/compare", params={"base": done, "new": done, "x": "1"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "x"
    r = service.client.get("/api/v1/compare", params={"base": done, "new": done, "format": "pdf"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "format"
    service.client.post(f"/api/v1/jobs/{running}/cancel")


def test_dashboard_shell_and_assets_need_no_token_but_data_does(service_factory: Callable[..., Live]) -> None:
    live = service_factory(token="s3cret")
    with client_for(live.base_url) as anonymous:
        r = anonymous.get("/", follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"] == "/ui"
        page = anonymous.get("/ui")
        assert page.status_code == 200 and "<title>evalsvc dashboard</title>" in page.text
        assert "/ui/static/app.js" in page.text
        js = anonymous.get("/ui/static/app.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
        assert anonymous.get("/ui/static/app.css").headers["content-type"].startswith("text/css")
        for name in ("index.html", "..%2F_app.py", "nope.js"):
            assert anonymous.get(f"/ui/static/{name}").status_code == 404
        for path in ("/metrics", "/api/v1/jobs", "/api/v1/compare"):
            assert anonymous.get(path).status_code == 401, path
    assert live.client.get("/metrics").status_code == 200
    public = service_factory(token="s3cret", metrics_public=True, outputs=live.app.state.service.policy.outputs_root
                             .parent / "public")  # type: ignore[union-attr]
    with client_for(public.base_url) as anonymous:
        assert anonymous.get("/metrics").status_code == 200
        assert anonymous.get("/api/v1/jobs").status_code == 401
    assert "security" not in public.client.get("/openapi.json").json()["paths"]["/metrics"]["get"]


def test_metrics_during_a_running_perf_job(service_factory: Callable[..., Live]) -> None:
    """The real engine against the mock: the scrape shows the job's live progress and the job gauges."""
    with start_mock(ttft_ms=0, itl_ms=5, output_tokens=4) as mock:
        live = service_factory(targets={})
        body = {"model": "mock", "url": mock.chat_url, "dataset": "random", "prompt_tokens": 8, "max_tokens": 4,
                "number": 100000, "parallel": 2, "record_requests": False}
        job_id = live.client.post("/api/v1/jobs/perf", json=body).json()["job_id"]
        live.wait_progress(job_id)
        r = live.client.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
        samples = _samples(r.text)
        run = "parallel_2_number_100000"
        assert _value(samples, "evalsvc_jobs", kind="perf", state="running") == 1
        assert _value(samples, "evalsvc_jobs", kind="eval", state="completed") == 0
        assert _value(samples, "evalsvc_jobs_running", kind="perf") == 1
        assert _value(samples, "evalsvc_queue_depth") == 0
        assert _value(samples, "evalsvc_perf_requests_planned", job_id=job_id, run=run) == 100000
        done = _value(samples, "evalsvc_perf_requests_done", job_id=job_id, run=run)
        assert done is not None and 0 < done < 100000
        assert _value(samples, "evalsvc_perf_requests_failed", job_id=job_id, run=run) == 0
        assert (_value(samples, "evalsvc_perf_request_rate", job_id=job_id, run=run) or 0) > 0
        assert _value(samples, "evalsvc_http_requests_total", method="POST", route="/api/v1/jobs/perf",
                      status="202") == 1
        assert (_value(samples, "evalsvc_http_requests_total", method="GET", route="/api/v1/jobs/{job_id}",
                       status="200") or 0) >= 1
        assert (_value(samples, "evalsvc_http_request_duration_seconds_count", method="POST",
                       route="/api/v1/jobs/perf")) == 1
        live.client.post(f"/api/v1/jobs/{job_id}/cancel")
        live.wait_state(job_id, ("cancelled",))
        samples = _samples(live.client.get("/metrics").text)
        assert _value(samples, "evalsvc_jobs", kind="perf", state="cancelled") == 1
        assert _value(samples, "evalsvc_job_duration_seconds_count", kind="perf", state="cancelled") == 1
        assert not any(name == "evalsvc_perf_requests_done" for name, _ in samples)  # gone with the job
        live.client.get("/no/such/path")
        samples = _samples(live.client.get("/metrics").text)
        assert _value(samples, "evalsvc_http_requests_total", method="GET", route="other", status="404") == 1


def test_json_logs_carry_the_request_id_and_never_a_secret(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("tok-SECRET-123\n")
    outputs = tmp_path / "out"
    with service_process(outputs, "--log-format", "json", "--token-file", str(token_file),
                         token="tok-SECRET-123") as live:
        body = perf_body(model="fake-config-not-a-url", url="not a url", api_key="sk-KEY-456")
        r = live.client.post("/api/v1/jobs/perf", json=body, headers={"X-Request-ID": "req-77"})
        assert r.status_code == 400
        live.client.get("/health", headers={"Authorization": "Bearer wrong"})
        assert live.process is not None and live.stderr_path is not None
    text = live.stderr_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines and all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    access = [line for line in lines if line["logger"] == "evalsvc.access"]
    posted = [line for line in access if line.get("route") == "/api/v1/jobs/perf"]
    assert posted and posted[0]["request_id"] == "req-77" and posted[0]["status"] == 400
    assert posted[0]["method"] == "POST" and posted[0]["duration_ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", posted[0]["ts"])
    assert "tok-SECRET-123" not in text and "sk-KEY-456" not in text and "wrong" not in text


def test_text_logs_have_timestamps_and_request_ids(tmp_path: Path) -> None:
    with service_process(tmp_path / "out") as live:
        live.client.get("/health", headers={"X-Request-ID": "hc-1"})
    assert live.stderr_path is not None
    lines = [line for line in live.stderr_path.read_text().splitlines() if "evalsvc.access" in line]
    assert any(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO +evalsvc\.access \[hc-1\] GET /health 200 ",
                        line) for line in lines), lines


def test_a_job_database_from_before_request_ids_opens_and_keeps_its_jobs(tmp_path: Path) -> None:
    import sqlite3

    from evalsvc.core.jobs import JobStore

    path = tmp_path / "jobs.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL,
        created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, config TEXT NOT NULL, progress TEXT NOT NULL,
        output_dir TEXT, result TEXT, error TEXT);
        INSERT INTO jobs VALUES ('old1', 'perf', 'completed', '2026-01-01T00:00:00Z', NULL, NULL, '{}', '{}',
        NULL, NULL, NULL);""")
    db.commit()
    db.close()
    store = JobStore(path)
    try:
        old = store.get("old1")
        assert old is not None and old.state == "completed" and old.request_id is None
        old.request_id = "r-1"
        store.put(old)
        again = store.get("old1")
        assert again is not None and again.request_id == "r-1"
        assert store.counts() == [("perf", "completed", 1)]
    finally:
        store.close()
