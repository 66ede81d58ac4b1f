"""Start-up time of the CLI: `evalsvc --help` and `evalsvc perf --help`, next to `python -c pass`.

Each command runs in a fresh interpreter (the way a user starts it), several times; the median wall time
and the median CPU time (user + system of the child: less sensitive to a loaded machine) are printed in
milliseconds. The target is under 300 ms for both help commands.

    python benchmarks/cli_startup.py            # 9 runs each, this checkout
    python benchmarks/cli_startup.py -n 15 --json
    python benchmarks/cli_startup.py --root /path/to/other/checkout   # compare with another tree
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "evalsvc --help": [sys.executable, "-c", "from evalsvc.cli import main; main()", "--help"],
    "evalsvc perf --help": [sys.executable, "-c", "from evalsvc.cli import main; main()", "perf", "--help"],
    "evalsvc eval --help": [sys.executable, "-c", "from evalsvc.cli import main; main()", "eval", "--help"],
}
TARGET_MS = 300.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(cmd: list[str], runs: int, root: Path) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of each run of `cmd` with `root` first on the import path."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run(cmd, env=env, capture_output=True, check=True)  # warm the file cache and the .pyc files
    wall, cpu = [], []
    for _ in range(runs):
        start, cpu_start = time.perf_counter(), _children_cpu()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((_children_cpu() - cpu_start) * 1000)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=9, help="runs per command (median reported)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    parser.add_argument("--root", type=Path, default=ROOT, help="the evalsvc checkout to measure (this one)")
    args = parser.parse_args()
    figures = {}
    for name, cmd in COMMANDS.items():
        wall, cpu = measure(cmd, args.runs, args.root)
        figures[name] = {"median_ms": round(statistics.median(wall), 1), "min_ms": round(min(wall), 1),
                         "max_ms": round(max(wall), 1), "cpu_median_ms": round(statistics.median(cpu), 1),
                         "runs": args.runs}
    if args.json:
        print(json.dumps(figures))
    else:
        for name, f in figures.items():
            print(f"{name:<22} wall median {f['median_ms']:7.1f} ms (min {f['min_ms']:.1f}, max {f['max_ms']:.1f})"
                  f"   cpu median {f['cpu_median_ms']:7.1f} ms   {f['runs']} runs")
    slow = [n for n in ("evalsvc --help", "evalsvc perf --help") if figures[n]["median_ms"] > TARGET_MS]
    if slow:
        print(f"over {TARGET_MS:.0f} ms: {', '.join(slow)}", file=sys.stderr)
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
