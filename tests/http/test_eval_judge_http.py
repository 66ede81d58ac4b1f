"""The service takes an eval body's `judge` block: checked before the job starts, its key never shown."""

from __future__ import annotations

import json

from tests.http._live import Live
from tests.http.conftest import eval_body

JUDGE = {"api_url": "http://127.0.0.1:9/v1", "model": "judge", "api_key": "sk-judge-HTTP-SECRET-77"}


def test_a_bad_judge_block_is_a_400_naming_the_field(service: Live) -> None:
    for judge, field in (({"api_url": "http://127.0.0.1:9/v1"}, "judge.model"),
                         ({**JUDGE, "concurrency": 0}, "judge.concurrency"),
                         ({**JUDGE, "strategy": "llm_recall"}, "judge.strategy")):
        r = service.client.post("/api/v1/jobs/eval", json=eval_body(datasets=["simple_qa"], judge=judge))
        assert r.status_code == 400, r.text
        assert r.json()["error"]["field"] == field
    r = service.client.post("/api/v1/jobs/eval", json=eval_body(datasets=["simple_qa"]))
    assert r.status_code == 400 and "pass `judge`" in r.json()["error"]["reason"]


def test_the_judges_key_never_appears_in_job_listings(service: Live) -> None:
    r = service.client.post("/api/v1/jobs/eval", json=eval_body(datasets=["simple_qa"], judge=JUDGE))
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    job = service.client.get(f"/api/v1/jobs/{job_id}").json()["job"]
    listing = service.client.get("/api/v1/jobs").json()
    for shown in (job, listing):
        assert JUDGE["api_key"] not in json.dumps(shown)
    assert job["config"]["judge"]["api_key"] == "***" and job["config"]["judge"]["model"] == "judge"
