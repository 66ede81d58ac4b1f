"""Perf, eval and the service on a Ray cluster: three nodes on this machine (tests/_ray.py), against the mock.

One module-wide cluster (starting one costs ~25 s here); skipped when Ray is not installed (the `ray`
extra is not part of `dev`). What a user relies on: every request is accounted for, the timings are the
server's, the merged summary is the union of what the actors measured, each actor's line says where it
ran, and a dead actor is reported while the others' numbers are kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from evalsvc import EvalConfig, run_eval, run_perf  # noqa: E402
from tests._evaldata import small_suite  # noqa: E402
from tests._perfrun import cfg, only, records  # noqa: E402
from tests._ray import local_cluster  # noqa: E402
from tests._servers import MockHandle, start_mock  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with local_cluster(nodes=3, num_cpus=1) as c:
        yield c


@pytest.fixture(scope="module")
def slow_mock() -> Iterator[MockHandle]:
    with start_mock(ttft_ms=200, itl_ms=20, output_tokens=8) as mock:
        yield mock


def test_three_actors_on_three_nodes_measure_what_the_server_injected(cluster: Any, slow_mock: MockHandle,
                                                                       tmp_path: Path) -> None:
    config = cfg(slow_mock.chat_url, tmp_path, number=48, parallel=6, max_tokens=8, workers=3,
                 ray_address=cluster.address)
    result = run_perf(config)
    assert result.status == "completed", result.error
    m, p = only(result)["metrics"], only(result)["percentiles"]
    assert m["requests_succeeded"] + m["requests_failed"] == 48 and m["requests_failed"] == 0
    assert p["ttft_ms"]["p50"] == pytest.approx(200, rel=0.05)
    assert p["tpot_ms"]["p50"] == pytest.approx(20, rel=0.05)
    clients = m["clients"]
    assert [c["shard"] for c in clients] == [0, 1, 2]
    assert len({c["node_id"] for c in clients}) == 3  # spread: one actor per node
    assert {c["node_ip"] for c in clients} == {"127.0.0.1"}
    # 16 requests each: long enough for a CPU share (sampled every 16th completion), far from busy
    assert all(c["error"] is None and c["client_bound"] is False and 0 <= c["cpu_share"] < 0.5 for c in clients)
    # the merged summary is the union of the actors' records: counts add up, every request once
    assert [c["number"] for c in clients] == [16, 16, 16] and sum(c["requests"] for c in clients) == 48
    rows = records(result)
    assert sorted(r["index"] for r in rows) == list(range(48)) and all(r["ok"] for r in rows)
    assert p["ttft_ms"]["count"] == len(rows) == m["requests_total"]
    saved = json.loads((Path(result.output_dir) / "summary.json").read_text())
    assert saved["results"]["parallel_6_number_48"]["metrics"]["clients"] == clients


def test_a_killed_actor_is_reported_and_the_others_numbers_kept(cluster: Any, tmp_path: Path) -> None:
    from evalsvc.core.perf._ray import ACTOR_PREFIX

    killed: list[str] = []

    def progress(event: dict[str, Any]) -> None:
        if event["type"] == "progress" and event["done"] > 30 and not killed:
            names = [n for n in ray.util.list_named_actors() if n.startswith(ACTOR_PREFIX)]
            victim = next(n for n in names if n.endswith("-1"))
            killed.append(victim)
            ray.kill(ray.get_actor(victim), no_restart=True)

    with start_mock(ttft_ms=5, itl_ms=1, output_tokens=4) as mock:
        result = run_perf(cfg(mock.chat_url, tmp_path, number=50_000, parallel=6, max_tokens=4, workers=3,
                              ray_address=cluster.address), progress=progress)
    assert killed
    assert result.status == "failed"
    assert (result.error or "").startswith("Ray actor 2 of 3 on node ")
    assert "exited without reporting (the actor died: " in (result.error or "")
    m = only(result)["metrics"]
    assert m["stopped_by"] == "client_failed"
    alive = [c for c in m["clients"] if c["error"] is None]
    (dead,) = [c for c in m["clients"] if c["error"] is not None]
    assert dead["shard"] == 1 and dead["requests"] is None and dead["node_id"]
    assert [c["shard"] for c in alive] == [0, 2]
    assert m["requests_total"] == sum(c["requests"] for c in alive) > 0  # the survivors' numbers, merged
    assert not [n for n in ray.util.list_named_actors() if n.startswith(ACTOR_PREFIX)]  # none left behind


def _shard_actors() -> list[str]:
    """Every evalsvc shard actor alive on the cluster, whichever driver (job process) owns it."""
    from evalsvc.core.perf._ray import ACTOR_PREFIX

    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(ACTOR_PREFIX)]


def test_a_service_job_runs_on_the_cluster_and_its_cancel_reaches_the_actors(cluster: Any, slow_mock: MockHandle,
                                                                              tmp_path: Path) -> None:
    import time

    from evalsvc.http import create_app
    from tests.http._live import serve_app

    app = create_app(outputs=tmp_path / "outputs", ray_address=cluster.address, cancel_grace_s=10.0)
    body = {"model": "m", "url": slow_mock.chat_url, "dataset": "random", "prompt_tokens": 8, "max_tokens": 8,
            "number": 12, "parallel": 3, "workers": 3, "preflight": False}
    with serve_app(app) as live:
        job = live.client.post("/api/v1/jobs/perf", json=body).json()["job"]
        done = live.wait_state(job["id"], ("completed", "failed"), timeout=120)
        assert done["state"] == "completed", done
        result = live.client.get(f"/api/v1/jobs/{job['id']}/result").json()
        (run,) = result["results"].values()
        assert run["metrics"]["requests_succeeded"] == 12
        assert len({c["node_id"] for c in run["metrics"]["clients"]}) == 3  # the service's cluster, 3 nodes
        # a long job, cancelled while its actors send: the job ends cancelled and no actor is left sending
        job = live.client.post("/api/v1/jobs/perf", json={**body, "number": 100_000}).json()["job"]
        live.wait_progress(job["id"], timeout=120)
        assert len(_shard_actors()) == 3
        assert live.client.post(f"/api/v1/jobs/{job['id']}/cancel").status_code in (200, 202)
        assert live.wait_state(job["id"], ("cancelled",), timeout=60)["state"] == "cancelled"
        deadline = time.monotonic() + 30
        while _shard_actors() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _shard_actors() == []


def test_three_datasets_on_the_cluster_score_as_they_do_locally(cluster: Any, tmp_path: Path) -> None:
    suite = small_suite(tmp_path / "datasets")
    with start_mock(answers=suite.answers, ttft_ms=0, itl_ms=0) as mock:
        base: dict[str, Any] = dict(model="mock-model", api_url=mock.base_url, datasets=["gsm8k", "iquiz", "ceval"],
                                    dataset_dir=str(suite.dataset_dir), retry_interval=0, report=False)
        local = run_eval(EvalConfig(**base, work_dir=str(tmp_path / "local")))
        events: list[dict[str, Any]] = []
        remote = run_eval(EvalConfig(**base, work_dir=str(tmp_path / "ray"), ray_address=cluster.address),
                          progress=events.append)
    assert local.status == remote.status == "completed", (local.error, remote.error)
    for name in ("gsm8k", "iquiz", "ceval"):
        here, there = local[name], remote[name]
        assert there.score == pytest.approx(suite.expected_score(name), abs=1e-4)
        assert (there.score, there.requested, there.scored, there.errored) == \
            (here.score, here.requested, here.scored, here.errored)
        assert there.subsets == here.subsets
    nodes = {e["message"].split()[4] for e in events
             if e.get("type") == "log" and str(e.get("message", "")).startswith("running on Ray node ")}
    assert len(nodes) == 3  # one dataset per node (SPREAD, one CPU each)
    assert not [a for a in ray.util.list_named_actors(all_namespaces=True)
                if a["name"].startswith("evalsvc-dataset-")]  # every dataset's actor ended with it


def test_cancelling_an_eval_on_the_cluster_stops_the_remote_worker(cluster: Any, tmp_path: Path) -> None:
    import asyncio
    import time

    from evalsvc import run_eval_async
    from tests._evaldata import mcq_row, write_local_copy

    rows = [mcq_row(f"[K{i}]", "A") for i in range(8)]
    write_local_copy(tmp_path / "data" / "iquiz", {"IQ": {"test": rows}})
    answers = [{"match": f"[K{i}]", "reply": "答案：A"} for i in range(8)]
    with start_mock(answers=answers, ttft_ms=400, itl_ms=0) as mock:
        config = EvalConfig(model="m", api_url=mock.base_url, datasets=["iquiz"], dataset_dir=str(tmp_path / "data"),
                            work_dir=str(tmp_path / "out"), preflight=False, report=False,
                            ray_address=cluster.address)

        async def cancel_after_two() -> Any:
            cancel = asyncio.Event()

            def on_event(event: dict[str, Any]) -> None:
                if event["type"] == "progress" and event["done"] >= 2:
                    cancel.set()

            return await run_eval_async(config, progress=on_event, cancel=cancel)

        result = asyncio.run(cancel_after_two())
        asked = mock.stats()["requests"]
        time.sleep(2.0)  # a worker still running remotely would keep asking (one request per 0.4 s)
        assert mock.stats()["requests"] == asked
    assert result.status == "cancelled"
    part = result["iquiz"]
    assert part.status == "cancelled" and 2 <= part.predicted < 8
    assert not [a for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("evalsvc-dataset-")]
