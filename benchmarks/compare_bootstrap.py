"""Time of `evalsvc compare`'s bootstrap: one distribution metric, two runs of N requests each.

The percentiles are drawn exactly from order statistics (O(resamples)); the mean resamples the records
(O(resamples * N), chunked). Run: python benchmarks/compare_bootstrap.py [--requests 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalsvc.core.report.compare import RESAMPLES, bootstrap_diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    base = list(rng.gamma(4, 50, args.requests))
    new = list(rng.gamma(4, 50, args.requests) + 5)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = bootstrap_diff(base, new)
        times.append(time.perf_counter() - t0)
    print(f"{args.requests} + {args.requests} requests, {RESAMPLES} resamples: "
          f"best {min(times) * 1000:.0f} ms, median {sorted(times)[len(times) // 2] * 1000:.0f} ms per metric")
    for stat, (d, low, high) in result.items():
        print(f"  {stat:>5}: {d:+8.2f}  95% [{low:+8.2f}, {high:+8.2f}]")


if __name__ == "__main__":
    main()
