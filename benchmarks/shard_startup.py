"""What sharding a sweep point over client processes costs to start: run_perf wall time with
`workers` = 1, 2, 4 for a tiny run (a few requests against the simulated endpoint, no latency), so the
time is almost all starting, warming and stopping the client processes.

    python benchmarks/shard_startup.py                 # 5 repeats, workers 1 2 4
    python benchmarks/shard_startup.py --repeats 9 --workers 1 8

Prints the median wall time per `workers` and the start cost per extra client process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalsvc import PerfConfig, run_perf
from tests._servers import start_mock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    with start_mock(ttft_ms=0, itl_ms=0, output_tokens=4) as mock, tempfile.TemporaryDirectory() as tmp:
        medians = {}
        for workers in args.workers:
            times = []
            for _ in range(args.repeats):
                config = PerfConfig(model="m", url=mock.chat_url, dataset="random", prompt_tokens=8, max_tokens=4,
                                    number=2 * workers, parallel=workers, workers=workers, work_dir=tmp)
                started = time.perf_counter()
                result = run_perf(config)
                times.append(time.perf_counter() - started)
                assert result.status == "completed", result.error
            medians[workers] = statistics.median(times)
            print(f"workers={workers}: median {medians[workers]:.3f} s over {args.repeats} runs "
                  f"(min {min(times):.3f}, max {max(times):.3f})")
        base = medians.get(1)
        if base is not None:
            for workers, t in medians.items():
                if workers > 1:
                    print(f"workers={workers}: +{t - base:.3f} s over one process")


if __name__ == "__main__":
    main()
