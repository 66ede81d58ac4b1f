"""Perf on a Ray cluster: three nodes on this machine (tests/_ray.py), one actor per node against the mock.

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

from evalsvc import run_perf  # noqa: E402
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
