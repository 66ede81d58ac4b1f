"""How fast can evalsvc's load generator go? Its requests/s and streamed chunks/s next to wrk's.

The nginx rig of ../shared/rig answers fixed 128-token completions from memory (plain JSON and SSE), so
the client is the only bottleneck. `trickle` is the same stream written ~256 bytes at a time at a limited
rate, so events arrive in separate reads as from a real server (one feed per event or two instead of one per
stream). For each path the script runs wrk, then `run_perf` (closed loop) with 1 and 2 client processes,
interleaved and repeated so machine noise hits all of them alike, and prints the best of each with the
ratio to wrk measured in the same run.

    python benchmarks/client_ceiling.py [--seconds 5] [--parallel 64] [--rounds 2] [--rig ../shared/rig]
                                        [--paths plain,sse,trickle] [--workers 1,2] [--parse-only]

To compare two checkouts (e.g. the cost of a parser change), run the script alternately with PYTHONPATH
set to each and take the best of each: the script measures whatever `evalsvc` it imports.

Needs nginx and wrk (`apt-get install nginx wrk`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evalsvc import PerfConfig, run_perf

CHUNKS_PER_STREAM = 128  # the rig's SSE body: 128 one-token chunks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_rig(rig_dir: Path, run_dir: Path) -> tuple[int, subprocess.Popen[bytes]]:
    port = free_port()
    subprocess.run([sys.executable, str(rig_dir / "make_conf.py"), str(port), str(run_dir)], check=True,
                   stdout=subprocess.DEVNULL)
    proc = subprocess.Popen(["nginx", "-c", str(run_dir / "nginx.conf"), "-p", str(run_dir),
                             "-g", "daemon off;"], stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return port, proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("nginx rig did not start")


def wrk(url: str, seconds: float, connections: int) -> float:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", url], check=True,
                         capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if not m:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    return float(m.group(1))


def evalsvc_rps(url: str, stream: bool, seconds: float, parallel: int, workers: int, work_dir: str) -> float:
    config = PerfConfig(model="rig", url=url, dataset="random", prompt_tokens=16, max_tokens=128, stream=stream,
                        number=10_000_000, parallel=parallel, duration=seconds, workers=workers,
                        warmup=parallel, record_requests=False, work_dir=work_dir)
    result = run_perf(config)
    (run,) = result.results.values()
    m = run.metrics
    if m["requests_failed"]:
        raise SystemExit(f"evalsvc saw failures against the rig: {m['failures_by_kind']}")
    return float(m["request_throughput"])


def parse_cost(rig_dir: Path, rounds: int) -> tuple[float, float]:
    """CPU µs to parse the rig's 128-chunk stream: in one read, and one event per read (best of `rounds`)."""
    import timeit

    from evalsvc.core.perf.dialects.openai import OpenAIStream

    body = (rig_dir / "chat_stream.sse").read_bytes()
    events = [e + b"\n\n" for e in body.split(b"\n\n") if e]

    def run(reads: list[bytes]) -> None:
        parser = OpenAIStream()
        for k, data in enumerate(reads):
            parser.feed(data, float(k))
        parser.close(float(len(reads)))

    # CPU time of this process: on a shared machine it is far steadier than wall time
    one = min(timeit.Timer(lambda: run([body]), timer=time.process_time).repeat(max(5, rounds), 300)) / 300 * 1e6
    per = min(timeit.Timer(lambda: run(events), timer=time.process_time).repeat(max(5, rounds), 30)) / 30 * 1e6
    return one, per


def main() -> None:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rig", type=Path, default=here.parent.parent / "shared" / "rig")
    parser.add_argument("--paths", default="plain,sse,trickle", help="rig paths to measure, comma-separated")
    parser.add_argument("--workers", default="1,2", help="client process counts to measure, comma-separated")
    parser.add_argument("--parse-only", action="store_true", help="only the stream parse cost (no nginx, no wrk)")
    args = parser.parse_args()
    paths = [p for p in args.paths.split(",") if p]
    worker_counts = [int(w) for w in args.workers.split(",") if w]
    one, per = parse_cost(args.rig, args.rounds)
    print(f"stream parse cost of the rig's 128-chunk answer (CPU): {one:.1f} µs in one read, "
          f"{per:.1f} µs one event a read")
    if args.parse_only:
        return
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install nginx wrk)")
    run_dir = Path(tempfile.mkdtemp(prefix="evalsvc-rig-"))
    work_dir = tempfile.mkdtemp(prefix="evalsvc-ceiling-")
    port, nginx = start_rig(args.rig, run_dir)
    import evalsvc
    print(f"evalsvc from {Path(evalsvc.__file__).parent}")
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; parallel {args.parallel}, "
          f"{args.seconds:g}s per measurement, best of {args.rounds} rounds\n")
    try:
        rows = []
        for path in paths:
            stream = path != "plain"
            url = f"http://127.0.0.1:{port}/{path}/v1/chat/completions"
            best = {"wrk": 0.0, **{f"evalsvc x{w}": 0.0 for w in worker_counts}}
            for _ in range(args.rounds):
                best["wrk"] = max(best["wrk"], wrk(url, args.seconds, args.parallel))
                for workers in worker_counts:
                    rps = evalsvc_rps(url, stream, args.seconds, args.parallel, workers, work_dir)
                    best[f"evalsvc x{workers}"] = max(best[f"evalsvc x{workers}"], rps)
            rows.append((path, best))
        print(f"{'path':<8} {'client':<12} {'requests/s':>12} {'chunks/s':>12} {'of wrk':>8}")
        for path, best in rows:
            for name, rps in best.items():
                chunks = f"{rps * CHUNKS_PER_STREAM:12.0f}" if path != "plain" else f"{'-':>12}"
                print(f"{path:<8} {name:<12} {rps:12.0f} {chunks} {rps / best['wrk']:8.1%}")
    finally:
        nginx.terminate()
        nginx.wait()
        shutil.rmtree(work_dir, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
