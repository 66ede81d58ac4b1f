"""What evalsvc's isolation costs, and what its concurrency buys: run_eval against evalscope's run_task.

The same three-dataset evaluation (gsm8k, iquiz, ceval; local copies, canned answers) against the
simulated endpoint, three ways:

  evalscope   one `run_task` in a fresh Python process, as a script would call it: the datasets run
              one after another (the time of run_task alone, without interpreter start and import, is
              printed too)
  sequential  run_eval with max_workers=1: one spawned worker per dataset, one at a time
  concurrent  run_eval with the default max_workers: the three workers at once

All three must give the same scores; the script prints the median wall times and their ratios.
run_eval's workers fork from one process that imported evalscope once, and skip evalscope's HTML page
(0.5-2 s per run; the report JSON it renders from is kept): both count in its favour here.

    python benchmarks/eval_overhead.py                      # 20 questions per subset, 50 ms endpoint
    python benchmarks/eval_overhead.py --n 50 --ttft-ms 0 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalsvc import EvalConfig, run_eval
from tests._evaldata import generated_suite
from tests._servers import start_mock

DATASETS = ["gsm8k", "iquiz", "ceval"]

_DIRECT = r"""
import json, sys, time
t0 = time.monotonic()
from evalscope import TaskConfig, run_task
spec = json.loads(sys.argv[1])
t1 = time.monotonic()
reports = run_task(TaskConfig(**spec))
t2 = time.monotonic()
print(json.dumps({"import_s": t1 - t0, "run_task_s": t2 - t1,
                  "scores": {name: report.score for name, report in reports.items()}}))
"""


def direct(spec: dict, hf_cache: Path) -> tuple[float, float, dict[str, float]]:
    """evalscope's run_task in a fresh process: (whole-process wall, run_task wall, scores).

    `datasets` caches a local folder under its name only: without a cache folder of its own, run_task
    would evaluate whatever copy named 'gsm8k' was loaded last (evalsvc keys the cache per copy).
    """
    import os

    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", _DIRECT, json.dumps(spec)], capture_output=True, text=True,
                         env={**os.environ, "HF_DATASETS_CACHE": str(hf_cache)})
    wall = time.monotonic() - t0
    if out.returncode != 0:
        raise SystemExit(f"run_task failed:\n{out.stderr[-3000:]}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return wall, data["run_task_s"], data["scores"]


def evalsvc(config: EvalConfig) -> tuple[float, dict[str, float]]:
    t0 = time.monotonic()
    result = run_eval(config)
    wall = time.monotonic() - t0
    if result.status != "completed":
        raise SystemExit(f"run_eval {result.status}: {result.error}")
    return wall, {name: d.score for name, d in result.datasets.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20, help="questions per subset (5 subsets: 5n requests)")
    parser.add_argument("--ttft-ms", type=float, default=50.0, help="simulated endpoint latency per request")
    parser.add_argument("--batch", type=int, default=1, help="eval_batch_size (concurrent requests per dataset)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="evalsvc-bench-") as tmp:
        root = Path(tmp)
        suite = generated_suite(root / "data", args.n)
        with start_mock(answers=suite.answers, ttft_ms=args.ttft_ms, itl_ms=0) as mock:
            base = dict(model="mock-model", api_url=mock.base_url, datasets=DATASETS, eval_batch_size=args.batch,
                        dataset_dir=str(root / "data"), retry_interval=0)
            concurrent_cfg = EvalConfig(**base, work_dir=str(root / "evalsvc"))
            sequential_cfg = concurrent_cfg.replace(max_workers=1)
            # The exact settings run_eval gives each worker, in one TaskConfig: evalscope runs the datasets in turn.
            from evalsvc.core.eval import plan_eval
            from evalsvc.core.eval._plan import task_kwargs

            plan = plan_eval(concurrent_cfg)
            spec = task_kwargs(plan, plan.datasets[0], root / "direct", resume=False)
            spec["datasets"] = DATASETS
            spec["dataset_args"] = {d.name: d.args for d in plan.datasets}
            spec["generation_config"]["retry_interval"] = 0

            times: dict[str, list[float]] = {"evalscope": [], "evalscope_run_task": [], "sequential": [],
                                             "concurrent": []}
            scores: dict[str, dict[str, float]] = {}
            for i in range(args.repeats):
                spec["work_dir"] = str(root / f"direct{i}")
                wall, inner, scores["evalscope"] = direct(spec, root / "hf-cache")
                times["evalscope"].append(wall)
                times["evalscope_run_task"].append(inner)
                wall, scores["sequential"] = evalsvc(sequential_cfg)
                times["sequential"].append(wall)
                wall, scores["concurrent"] = evalsvc(concurrent_cfg)
                times["concurrent"].append(wall)
                print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), flush=True)

    expected = {name: round(suite.expected_score(name), 4) for name in DATASETS}
    same = all({k: round(v, 4) for k, v in s.items()} == expected for s in scores.values())
    med = {k: statistics.median(v) for k, v in times.items()}
    requests = 5 * args.n
    print(f"\n3 datasets, {requests} requests, endpoint ttft {args.ttft_ms:g} ms, eval_batch_size {args.batch}, "
          f"median of {args.repeats}")
    print(f"scores: {scores} (expected {expected}); identical across the three: {same}")
    print(f"  evalscope run_task, fresh process     {med['evalscope']:7.2f} s   "
          f"(run_task alone {med['evalscope_run_task']:.2f} s)")
    print(f"  run_eval, max_workers=1 (sequential)  {med['sequential']:7.2f} s   "
          f"ratio to evalscope {med['sequential'] / med['evalscope']:.2f}")
    print(f"  run_eval, concurrent (default)        {med['concurrent']:7.2f} s   "
          f"ratio to evalscope {med['concurrent'] / med['evalscope']:.2f}")
    print(f"  sequential / concurrent               {med['sequential'] / med['concurrent']:7.2f}x")
    if not same:
        raise SystemExit("scores differ")


if __name__ == "__main__":
    main()
