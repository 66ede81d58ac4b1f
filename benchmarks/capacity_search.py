"""The capacity search measured: its answer over repeated runs, its cost against a plain sweep, the rate
search against a queueing model, and a real server (llama.cpp) with and without enough client.

Parts (all by default; pick with --parts):

  parallel  `run_capacity(search="parallel")` against `evalsvc mock --max-batch 16 --ttft-ms 100 --itl-ms 10
            --output-tokens 32` with SLO {"ttft_ms": 120}, attainment 0.95, --runs times: the answers, their
            range, probe runs and seconds each. The expected answer is 16: a request holds a slot for
            100 + 31 x 10 = 410 ms, so a 17th client always waits for a slot.
  sweep     the reference: a plain perf sweep of parallel 1..17 (one run each, sized as the search's full
            probes) that finds the same answer, measured in the same process: runs and seconds.
  rate      `run_capacity(search="rate")` on the same server, next to the queueing model: M/D/16 (Poisson
            arrivals, a deterministic 410 ms in a slot, 16 slots, FIFO); a request meets the SLO when it waits
            <= 20 ms for a slot. The model's answer is found by simulating that queue (steady state, and
            over a probe's own length from an empty queue), beside the ceiling 16 / 0.41 s = 39 req/s.
  llama     against llama.cpp's server (../shared/peers/llama-server.sh, SmolLM2-135M, 4 slots): a capacity
            with its confidence; then the same search with a client too weak to drive it (workers=1, no
            auto_workers, the client process stopped 80 % of the time): it must end "client_bound", not with
            a number. --llama-url takes a server already running (e.g. one started with -t 1 on a busy machine).

    python benchmarks/capacity_search.py                       # everything (slow: minutes)
    python benchmarks/capacity_search.py --parts parallel,sweep --runs 5
    python benchmarks/capacity_search.py --parts parallel --scale 3    # every time (and the SLO) x 3

On a loaded machine the issue's 20 ms of headroom (TTFT 100 ms, SLO 120 ms) is within the stalls of the
server process itself: --scale 3 slows the server and the SLO alike (answer still 16) to tell the two apart.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalsvc import CapacityConfig, PerfConfig, run_capacity, run_perf
from tests._servers import start_mock

from _peer import start_llama, stop_llama  # benchmarks/_peer.py (this script's folder is on sys.path)

SLO = {"ttft_ms": 120}
SLOTS, HOLD_S, TTFT_S = 16, 0.41, 0.100
MOCK = {"max_batch": SLOTS, "ttft_ms": 100, "itl_ms": 10, "output_tokens": 32}
LLAMA_MODEL = "smollm2-135m-instruct"


def base(url: str, work: str, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = dict(model="mock-model", url=url, dataset="random", prompt_tokens=8, max_tokens=32,
                               slo=SLO, work_dir=work)
    out.update(kw)
    return out


def show(result: Any) -> dict[str, Any]:
    cap = result.capacity
    lp, ff = cap.get("last_pass") or {}, cap.get("first_fail") or {}
    return {"status": str(result.status), "value": cap["value"], "ended": cap["ended"],
            "conclusive": cap["conclusive"], "probe_runs": cap["probe_runs"], "seconds": round(cap["seconds"], 1),
            "last_pass": [lp.get("value"), lp.get("attainment"), lp.get("interval")],
            "first_fail": [ff.get("value"), ff.get("attainment"), ff.get("interval")],
            "workers": cap["workers"], "goodput": cap["goodput"], "knee": (cap.get("knee") or {}).get("value")}


def scale(factor: float) -> None:
    """Slow the server and the SLO alike: every time x factor (the answers in slots stay the same)."""
    global HOLD_S
    SLO["ttft_ms"] = 120 * factor
    MOCK.update(ttft_ms=100 * factor, itl_ms=10 * factor)
    HOLD_S = 0.41 * factor


def part_parallel(url: str, work: str, runs: int) -> None:
    print(f"== parallel search x {runs} (expected 16); server {MOCK}, SLO {SLO}")
    values, seconds, probes = [], [], []
    for i in range(runs):
        result = run_capacity(CapacityConfig(**base(url, work, high=64, seed=42 + i)))
        s = show(result)
        print(json.dumps(s))
        values.append(s["value"])
        seconds.append(s["seconds"])
        probes.append(s["probe_runs"])
    known = [v for v in values if v is not None]
    print(f"answers {values}: range [{min(known) if known else None}, {max(known) if known else None}]; probe runs "
          f"{probes} (mean {sum(probes) / len(probes):.1f}); seconds {seconds} "
          f"(mean {sum(seconds) / len(seconds):.1f})")


def part_sweep(url: str, work: str) -> None:
    print("== reference: a plain perf sweep of parallel 1..17, each run sized as a full probe")
    parallels = list(range(1, SLOTS + 2))
    numbers = [max(100, 4 * p) for p in parallels]
    started = time.monotonic()
    result = run_perf(PerfConfig(**base(url, work, parallel=parallels, number=numbers)))
    elapsed = time.monotonic() - started
    passing = [r.metrics["parallel"] for r in result.results.values() if (r.metrics["slo_attainment"] or 0) >= 0.95]
    first_fail = next((r.metrics["parallel"] for r in result.results.values()
                       if (r.metrics["slo_attainment"] or 0) < 0.95), None)
    print(json.dumps({"runs": len(result.results), "seconds": round(elapsed, 1), "largest_passing": max(passing),
                      "first_failing": first_fail,
                      "attainment": {r.metrics["parallel"]: round(r.metrics["slo_attainment"], 3)
                                     for r in result.results.values()}}))


def simulate_md_c(rate: float, *, wait_limit: float, horizon_s: float | None, n: int, seed: int) -> float:
    """Share of arrivals waiting <= wait_limit in an M/D/c queue (c = SLOTS, service HOLD_S), FIFO.
    horizon_s: arrivals over that long a window from an empty queue (a probe); None: steady state."""
    rng = random.Random(seed)
    free = [0.0] * SLOTS  # when each slot frees up (a min-heap)
    ok = total = 0
    t = 0.0
    warm = 0 if horizon_s is not None else n // 10
    for i in range(n + warm):
        t += rng.expovariate(rate)
        if horizon_s is not None and t > horizon_s:
            break
        start = max(t, heapq.heappop(free))
        heapq.heappush(free, start + HOLD_S)
        if i >= warm:
            total += 1
            ok += (start - t) <= wait_limit
    return ok / total if total else 1.0


def model_capacity(target: float, *, probe: bool) -> float:
    """The largest arrival rate whose simulated attainment is >= target (bisection to 0.05 req/s); `probe`:
    over a full probe's own arrivals (max(100, 4 s worth)) from an empty queue, else in the steady state."""
    lo, hi = 1.0, SLOTS / HOLD_S
    while hi - lo > 0.05:
        mid = (lo + hi) / 2
        horizon_s = max(100 / mid, 4.0) if probe else None
        if horizon_s is None:
            share = simulate_md_c(mid, wait_limit=HOLD_S * 0.020 / 0.41, horizon_s=None, n=200_000, seed=1)
        else:  # the mean over many probe-length windows
            shares = [simulate_md_c(mid, wait_limit=HOLD_S * 0.020 / 0.41, horizon_s=horizon_s, n=10**6, seed=s)
                      for s in range(200)]
            share = sum(shares) / len(shares)
        lo, hi = (mid, hi) if share >= target else (lo, mid)
    return lo


def part_rate(url: str, work: str, workers: int) -> None:
    print(f"== rate search vs the queueing model (M/D/16, {HOLD_S * 1000:.0f} ms per request, SLO: wait <= "
          f"{HOLD_S * 20 / 0.41:.0f} ms)")
    steady = model_capacity(0.95, probe=False)
    probe = model_capacity(0.95, probe=True)
    print(json.dumps({"ceiling_req_s": round(SLOTS / HOLD_S, 2), "model_steady_state_req_s": round(steady, 2),
                      "model_probe_from_empty_req_s": round(probe, 2)}))
    result = run_capacity(CapacityConfig(**base(url, work, search="rate", low=4, high=64, workers=workers)))
    print(json.dumps(show(result)), flush=True)
    if result.capacity["value"] is None:
        print("message:", result.capacity["message"])


def part_llama(work: str, url: str | None, args: argparse.Namespace) -> None:
    port = None
    if url is None:
        port, url = start_llama()
    try:
        cfg = dict(model=LLAMA_MODEL, url=url, dataset="random", prompt_tokens=args.llama_prompt_tokens,
                   max_tokens=args.llama_max_tokens, extra_body={"ignore_eos": True, "cache_prompt": False},
                   slo={"ttft_ms": args.llama_slo_ms}, attainment=args.llama_attainment,
                   confidence=args.llama_confidence, work_dir=work, high=args.llama_high, number=args.llama_number,
                   max_repeats=2, timeout=300, max_seconds=args.llama_max_seconds)
        print(f"== llama.cpp ({url}): {json.dumps({k: v for k, v in cfg.items() if k not in ('work_dir', 'url')})}",
              flush=True)
        result = run_capacity(CapacityConfig(**cfg))
        print(json.dumps(show(result)), flush=True)
        print("message:", result.capacity["message"])
        print("== the same search with a client too weak to drive it: workers=1, auto_workers off, and the client "
              "process given 20 % of the time (SIGSTOP 200 ms / SIGCONT 50 ms)", flush=True)
        code = ("import json, sys\nfrom evalsvc import CapacityConfig, run_capacity\n"
                "r = run_capacity(CapacityConfig(**json.loads(sys.argv[1])))\n"
                "print(json.dumps({'status': str(r.status), 'value': r.capacity['value'], "
                "'ended': r.capacity['ended'], 'message': r.capacity['message']}))")
        weak = subprocess.Popen([sys.executable, "-c", code, json.dumps({**cfg, "workers": 1, "auto_workers": False})],
                                stdout=subprocess.PIPE, text=True)
        try:
            while weak.poll() is None:
                os.kill(weak.pid, signal.SIGSTOP)
                time.sleep(0.2)
                os.kill(weak.pid, signal.SIGCONT)
                time.sleep(0.05)
        finally:
            if weak.poll() is None:
                os.kill(weak.pid, signal.SIGCONT)
                weak.terminate()
        print((weak.stdout.read() if weak.stdout else "").strip(), flush=True)
    finally:
        if port is not None:
            stop_llama(port)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="parallel,sweep,rate,llama")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rate-workers", type=int, default=1)
    ap.add_argument("--llama-url", default=None, help="an already running llama-server's chat/completions URL")
    ap.add_argument("--llama-slo-ms", type=float, default=1000.0)
    ap.add_argument("--llama-attainment", type=float, default=0.95)
    ap.add_argument("--llama-confidence", type=float, default=0.95)
    ap.add_argument("--llama-prompt-tokens", type=int, default=64)
    ap.add_argument("--llama-max-tokens", type=int, default=32)
    ap.add_argument("--llama-number", type=int, default=40)
    ap.add_argument("--llama-high", type=float, default=16)
    ap.add_argument("--llama-max-seconds", type=float, default=900)
    ap.add_argument("--scale", type=float, default=1.0, help="every mock time and the SLO x this (default 1)")
    args = ap.parse_args()
    scale(args.scale)
    parts = args.parts.split(",")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="evalsvc-capacity-bench-") as work:
        if {"parallel", "sweep", "rate"} & set(parts):
            with start_mock(**MOCK) as mock:
                if "parallel" in parts:
                    part_parallel(mock.chat_url, work, args.runs)
                if "sweep" in parts:
                    part_sweep(mock.chat_url, work)
                if "rate" in parts:
                    part_rate(mock.chat_url, work, args.rate_workers)
        if "llama" in parts:
            part_llama(work, args.llama_url, args)


if __name__ == "__main__":
    main()
