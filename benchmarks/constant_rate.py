"""How closely `evalsvc perf` keeps a requested arrival rate: achieved vs requested, and send lag.

Starts the simulated endpoint in its own process (ttft 5 ms, itl 1 ms, 4 tokens: the server is never
what holds requests back) and runs `run_perf` with `arrival="constant"` at each requested rate. It
prints the requested rate, the achieved send rate (requests / (last send - first send)), its error,
and the send lag (t_sent - t_scheduled) at min / p50 / p99 / max (a negative minimum: sent early). The unit test
(tests/core/test_perf.py::test_constant_rate_follows_its_schedule) checks the schedule itself; this
script measures how well a given machine follows it, which depends on the machine's load.

    python benchmarks/constant_rate.py [--rates 50,100,500,1000] [--seconds 2] [--parallel 64] [--workers 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from evalsvc import PerfConfig, run_perf
from tests._servers import start_mock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="50,100,500,1000", help="requested arrivals/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each run")
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    with start_mock(ttft_ms=5, itl_ms=1, output_tokens=4) as mock, tempfile.TemporaryDirectory() as out:
        print(f"constant arrivals, {args.seconds:g} s per rate, parallel {args.parallel}, workers {args.workers}, "
              f"{os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f})")
        print(f"{'requested/s':>12} {'achieved/s':>11} {'error':>8} {'ok':>6} {'lag min':>9} {'lag p50':>9} "
              f"{'lag p99':>9} {'lag max':>9} {'client-bound':>13}")
        for rate in rates:
            number = max(2, int(rate * args.seconds))
            result = run_perf(PerfConfig(model="mock-model", url=mock.chat_url, dataset="random", prompt_tokens=8,
                                         max_tokens=4, number=number, rate=rate, arrival="constant",
                                         parallel=args.parallel, workers=args.workers, work_dir=out,
                                         record_requests=False))
            run = next(iter(result.results.values())).to_dict()
            m, lag = run["metrics"], run["percentiles"]["send_lag_ms"]
            achieved = m["send_rate"]
            print(f"{rate:>12g} {achieved:>11.1f} {(achieved / rate - 1) * 100:>+7.2f}% "
                  f"{m['requests_succeeded']:>6} {lag['min']:>7.2f}ms {lag['p50']:>7.2f}ms {lag['p99']:>7.2f}ms "
                  f"{lag['max']:>7.2f}ms {m.get('client_bound')!s:>13}")


if __name__ == "__main__":
    main()
