"""evalsvc on a local three-node Ray cluster (needs the ray extra): perf, eval and a service job, with figures.

Starts a cluster of three nodes on 127.0.0.1 (one CPU each; tests/_ray.py) and the simulated endpoint with a
set TTFT and inter-token latency, then:

- perf: `number` requests over three Ray actors (one per node), printing each actor's node, share, requests
  and CPU share, the merged counts against the union of the actors' records, and the TTFT / TPOT medians
  against the injected values;
- eval: three datasets (small local copies) locally and on the cluster, scores and counts side by side;
- service: a perf job through `evalsvc service --ray-address` (create_app), its state and where it ran.

    python benchmarks/ray_cluster.py [--number 300] [--parallel 12] [--ttft-ms 200] [--itl-ms 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests._ray import local_cluster  # first: sets Ray's loopback mode before Ray is imported
from evalsvc import EvalConfig, PerfConfig, run_eval, run_perf
from tests._evaldata import small_suite
from tests._servers import start_mock


def perf(address: str, mock_url: str, args: argparse.Namespace, work_dir: str) -> None:
    config = PerfConfig(model="m", url=mock_url, dataset="random", prompt_tokens=16, max_tokens=args.tokens,
                        number=args.number, parallel=args.parallel, workers=3, ray_address=address,
                        work_dir=work_dir, report=False)
    started = time.perf_counter()
    result = run_perf(config)
    (run,) = result.results.values()
    m, p = run.metrics, run.percentiles
    print(f"perf on 3 Ray actors: status {result.status}, {time.perf_counter() - started:.1f} s wall")
    print(f"  {'actor':<6} {'node_id':<14} {'share':>6} {'requests':>9} {'failed':>7} {'CPU share':>10} client-bound")
    for c in m["clients"]:
        share = "-" if c["cpu_share"] is None else f"{c['cpu_share']:.1%}"
        print(f"  {c['shard']:<6} {str(c['node_id'])[:12]:<14} {c['number']:>6} {c['requests']:>9} {c['failed']:>7} "
              f"{share:>10} {c['client_bound']}")
    (records,) = Path(result.output_dir).glob("requests_*.jsonl")
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    actors = sum(c["requests"] for c in m["clients"])
    print(f"  success + failed = {m['requests_succeeded']} + {m['requests_failed']} = "
          f"{m['requests_succeeded'] + m['requests_failed']} (number {args.number}); records {len(rows)}, "
          f"distinct indices {len({r['index'] for r in rows})}; sum of actors {actors}; "
          f"distinct nodes {len({c['node_id'] for c in m['clients']})}")
    for name, injected in (("ttft_ms", args.ttft_ms), ("tpot_ms", args.itl_ms)):
        got = p[name]["p50"]
        print(f"  {name} p50 {got:.2f} ms, injected {injected:g} ms: {got / injected - 1:+.2%}")


def evaluate(address: str, tmp: Path) -> None:
    suite = small_suite(tmp / "datasets")
    with start_mock(answers=suite.answers, ttft_ms=0, itl_ms=0) as mock:
        base: dict[str, Any] = dict(model="mock-model", api_url=mock.base_url, datasets=["gsm8k", "iquiz", "ceval"],
                                    dataset_dir=str(suite.dataset_dir), retry_interval=0, report=False)
        t0 = time.perf_counter()
        local = run_eval(EvalConfig(**base, work_dir=str(tmp / "eval-local")))
        t1 = time.perf_counter()
        remote = run_eval(EvalConfig(**base, work_dir=str(tmp / "eval-ray"), ray_address=address))
        t2 = time.perf_counter()
    print(f"\neval of 3 datasets: local {local.status} in {t1 - t0:.1f} s, on the cluster {remote.status} in "
          f"{t2 - t1:.1f} s")
    print(f"  {'dataset':<8} {'local score':>11} {'ray score':>10} {'requested/scored/errored (local | ray)':>40}")
    for name in ("gsm8k", "iquiz", "ceval"):
        a, b = local[name], remote[name]
        counts = f"{a.requested}/{a.scored}/{a.errored} | {b.requested}/{b.scored}/{b.errored}"
        print(f"  {name:<8} {a.score:11.4f} {b.score:10.4f} {counts:>40}")


def service(address: str, mock_url: str, tmp: Path) -> None:
    from evalsvc.http import create_app
    from tests.http._live import serve_app

    body = {"model": "m", "url": mock_url, "dataset": "random", "prompt_tokens": 8, "max_tokens": 8, "number": 30,
            "parallel": 6, "workers": 3}
    with serve_app(create_app(outputs=tmp / "service", ray_address=address)) as live:
        job = live.client.post("/api/v1/jobs/perf", json=body).json()["job"]
        done = live.wait_state(job["id"], ("completed", "failed", "cancelled", "interrupted"), timeout=300)
        answer = live.client.get(f"/api/v1/jobs/{job['id']}/result").json()
    (run,) = answer["results"].values()
    nodes = {c["node_id"] for c in run["metrics"]["clients"]}
    print(f"\nservice perf job on the cluster: {done['state']}, {run['metrics']['requests_succeeded']} of 30 "
          f"succeeded, on {len(nodes)} nodes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--number", type=int, default=300)
    parser.add_argument("--parallel", type=int, default=12)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--ttft-ms", type=float, default=200)
    parser.add_argument("--itl-ms", type=float, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name, \
            start_mock(ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, output_tokens=args.tokens) as mock:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        with local_cluster(nodes=3, num_cpus=1) as cluster:
            print(f"3-node cluster at {cluster.address} up in {time.perf_counter() - t0:.1f} s\n")
            perf(cluster.address, mock.chat_url, args, str(tmp / "perf"))
            evaluate(cluster.address, tmp)
            service(cluster.address, mock.chat_url, tmp)


if __name__ == "__main__":
    main()
