"""How closely `evalsvc perf` replays a trace at its own times: send lag (t_sent - t_scheduled) of a 2,000-request
Mooncake-format trace, next to the same number of requests at the trace's mean rate, constant and Poisson.

Starts the simulated endpoint in its own process (no TTFT, no inter-token delay: the server never holds requests
back), writes a Mooncake JSONL trace (seeded: random times within --span-ms, so requests come in bursts of up to
several per ms; prompts of 20-1,100 tokens sharing leading hash-id blocks; outputs of 1-6 tokens) and replays it
with `dataset="trace"` at `speed` 1, after reference runs that send as many requests of the trace's mean prompt
length at the trace's mean rate, at a constant rate and as a Poisson process (random times within a span are
one, so the Poisson run is as bursty as this trace); `--rounds` alternates them (this machine's load varies).
Each row prints the requests that succeeded, the mean rate, the send lag at p50 / p99 / max and the
client-bound verdict. The tests (tests/core/test_perf_workloads_run.py) check the schedule itself; this
measures how well this machine keeps it, which depends on the machine's load.

    python benchmarks/trace_replay.py [--requests 2000] [--span-ms 4000] [--parallel 512] [--speed 1] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from evalsvc import PerfConfig, run_perf
from tests._perfrun import mooncake_trace
from tests._servers import start_mock


def _row(name: str, result: object) -> str:
    run = next(iter(result.results.values())).to_dict()  # type: ignore[attr-defined]
    m, lag = run["metrics"], run["percentiles"]["send_lag_ms"]
    return (f"{name:<28} {m['requests_succeeded']:>6} {m['rate']:>9.1f} {lag['p50']:>8.2f}ms {lag['p99']:>8.2f}ms "
            f"{lag['max']:>8.2f}ms {m.get('client_bound')!s:>13}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--span-ms", type=int, default=4000, help="the trace's length in ms")
    parser.add_argument("--parallel", type=int, default=512)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternate the two schedules this many times "
                        "(the machine's load varies)")
    args = parser.parse_args()
    with start_mock(ttft_ms=0, itl_ms=0, output_tokens=8) as mock, tempfile.TemporaryDirectory() as out:
        path = Path(out) / "trace.jsonl"
        rows = mooncake_trace(path, n=args.requests, span_ms=args.span_ms)
        mean_len = round(sum(r["input_length"] for r in rows) / len(rows))
        common = dict(model="mock-model", url=mock.chat_url, parallel=args.parallel, work_dir=out,
                      record_requests=False)
        print(f"{args.requests} requests over {rows[-1]['timestamp'] / 1000 / args.speed:g} s, parallel "
              f"{args.parallel}, {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f})")
        print(f"{'schedule':<28} {'ok':>6} {'rate/s':>9} {'lag p50':>10} {'lag p99':>10} {'lag max':>10} "
              f"{'client-bound':>13}")
        span = (rows[-1]["timestamp"] - rows[0]["timestamp"]) / 1000 / args.speed
        rate = (len(rows) - 1) / span
        for _ in range(args.rounds):
            for arrival in ("constant", "poisson"):
                reference = run_perf(PerfConfig(dataset="random", prompt_tokens=mean_len, max_tokens=4,
                                                number=args.requests, rate=rate, arrival=arrival, **common))
                print(_row(f"{arrival}, same mean rate", reference))
            trace = run_perf(PerfConfig(dataset="trace", dataset_path=str(path), speed=args.speed, **common))
            print(_row(f"trace (speed {args.speed:g})", trace))


if __name__ == "__main__":
    main()
