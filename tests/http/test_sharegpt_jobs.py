"""sharegpt multi-turn load tests through the service's job API, with the real perf engine and the simulated
endpoint: a local file under a data root, its per-turn results, and bad input as 400s naming the field/file."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests._servers import MockHandle, start_mock
from tests.http._live import Live


@pytest.fixture(scope="module")
def mock() -> Iterator[MockHandle]:
    with start_mock(ttft_ms=1, itl_ms=0, output_tokens=4) as server:
        yield server


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    rows = [{"id": str(i), "conversations": [
        {"from": "human", "value": f"first question of conversation {i}"}, {"from": "gpt", "value": "a reply"},
        {"from": "human", "value": "and a follow-up"}, {"from": "gpt", "value": "another reply"}]} for i in range(6)]
    (folder / "sharegpt.json").write_text(json.dumps(rows), encoding="utf-8")
    (folder / "broken.json").write_text("[{", encoding="utf-8")
    return folder


@pytest.fixture
def live(service_factory: Callable[..., Live], data: Path) -> Live:
    return service_factory(targets={}, data_roots=[str(data)])


def test_a_multi_turn_sharegpt_job(live: Live, mock: MockHandle, data: Path) -> None:
    body = {"model": "m", "url": mock.chat_url, "dataset": "sharegpt", "dataset_path": str(data / "sharegpt.json"),
            "multi_turn": True, "think_time": 0.01, "number": 8, "parallel": 2, "max_tokens": 8}
    r = live.client.post("/api/v1/jobs/perf", json=body)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    live.wait_state(job_id, ("completed",))
    got = live.client.get(f"/api/v1/jobs/{job_id}/result").json()
    metrics = got["results"]["parallel_2_number_8"]["metrics"]
    assert metrics["requests_succeeded"] == 8
    assert metrics["sessions_completed"] >= 3 and metrics["by_turn"]["2"]["succeeded"] >= 3
    assert metrics["ttft_ms_turn1_mean"] is not None and metrics["ttft_ms_turn2plus_mean"] is not None
    rows = [json.loads(line) for line in
            (Path(got["output_dir"]) / "requests_parallel_2_number_8.jsonl").read_text().splitlines()]
    turns: dict[int, list[int]] = {}
    for row in rows:
        turns.setdefault(row["session"], []).append(row["turn"])
    assert sum(map(len, turns.values())) == 8 and all(sorted(t) == list(range(1, len(t) + 1)) for t in turns.values())


def test_bad_sharegpt_input_is_a_400(live: Live, mock: MockHandle, data: Path) -> None:
    base = {"model": "m", "url": mock.chat_url, "number": 4}
    r = live.client.post("/api/v1/jobs/perf", json={**base, "dataset": "random", "multi_turn": True})
    assert r.status_code == 400 and r.json()["error"]["field"] == "multi_turn", r.text
    r = live.client.post("/api/v1/jobs/perf", json={**base, "dataset": "sharegpt", "dataset_path": "/etc/hosts"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "dataset_path", r.text
    broken = str(data / "broken.json")
    r = live.client.post("/api/v1/perf", json={**base, "dataset": "sharegpt", "dataset_path": broken})
    assert r.status_code == 400, r.text
    assert f"{broken} is not valid JSON" in r.json()["message"]
