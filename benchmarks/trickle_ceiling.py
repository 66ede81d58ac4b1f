"""Streamed chunks/s and CPU per request on a trickled stream: evalsvc next to a plain aiohttp + orjson client.

The nginx rig (../shared/rig) serves a canned 128-chunk OpenAI stream from memory; its `trickle` path writes
it ~256 bytes at a time at TRICKLE_RATE bytes/s per connection (default 64k), so a client gets about one event
per read (~90 reads a stream), as from a real server, and pays the per-read cost that one big read hides.
In one run, interleaved and repeated so machine noise hits every client alike, best of each printed:

    plain aiohttp+orjson   aiohttp.ClientSession, reads as they come, splits events, orjson-decodes each,
                           counts content chunks (no timing, no metrics: the floor of a Python client)
    evalsvc x1             run_perf in this process (closed loop, `parallel` streams)
    evalsvc x1 scan-only   the same with the per-read decode choice off (every read scanned: the old path)
    evalsvc workers=2      two client processes
    evalsvc ray x3         three Ray actors on a local three-node cluster (--ray; needs the ray extra)

CPU per request: the plain client's own process time; evalsvc's from each client's measured CPU share over
the run (metrics.client_cpu_share, or the sum over metrics.clients). Also printed: the parse cost alone of
the rig's stream (µs CPU per stream) read whole, one event a read and 256 bytes a read, decoded vs scanned.

    python benchmarks/trickle_ceiling.py [--seconds 5] [--parallel 128] [--rounds 2] [--ray]
                                         [--rig ../shared/rig]

Needs nginx (`apt-get install nginx`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(1, str(Path(__file__).resolve().parent))

import orjson

from client_ceiling import start_rig  # the same rig start as the ceiling benchmark
from evalsvc import PerfConfig, run_perf
from evalsvc.core.perf.dialects.openai import OpenAIStream

CHUNKS_PER_STREAM = 128


# ---- the parse cost alone -----------------------------------------------------------------------------

def parse_costs(body: bytes, repeat: int = 7) -> dict[str, tuple[float, float]]:
    """µs CPU per stream, (decoded where chosen, scan only), for three ways of cutting it into reads."""
    events = [e + b"\n\n" for e in body.split(b"\n\n") if e]
    cuts = {"one read": [body], "one event a read": events,
            "256 B a read": [body[i:i + 256] for i in range(0, len(body), 256)]}

    def run(reads: list[bytes]) -> None:
        parser = OpenAIStream()
        for k, data in enumerate(reads):
            parser.feed(data, float(k))
        parser.close(float(len(reads)))

    def cost(reads: list[bytes]) -> float:
        n = 300 if len(reads) == 1 else 30
        return min(timeit.Timer(lambda: run(reads), timer=time.process_time).repeat(repeat, n)) / n * 1e6

    out = {}
    for name, reads in cuts.items():
        decoded = cost(reads)
        OpenAIStream._decodes = False
        try:
            scanned = cost(reads)
        finally:
            OpenAIStream._decodes = True
        out[name] = (decoded, scanned)
    return out


def plain_parse_cost(body: bytes, repeat: int = 7) -> float:
    events = [e + b"\n\n" for e in body.split(b"\n\n") if e]
    return min(timeit.Timer(lambda: _plain_count(events), timer=time.process_time).repeat(repeat, 30)) / 30 * 1e6


def _plain_count(reads: list[bytes]) -> int:
    buf, n = b"", 0
    for data in reads:
        buf += data
        while (cut := buf.find(b"\n\n")) >= 0:
            line, buf = buf[:cut], buf[cut + 2:]
            if line.startswith(b"data: {"):
                event = orjson.loads(line[6:])
                for choice in event.get("choices") or ():
                    if choice.get("delta", {}).get("content"):
                        n += 1
    return n


# ---- the clients --------------------------------------------------------------------------------------

async def _plain_client(url: str, seconds: float, parallel: int) -> tuple[int, int, float]:
    import aiohttp

    body = orjson.dumps({"model": "rig", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    deadline = time.perf_counter() + seconds
    done = chunks = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done, chunks
        while time.perf_counter() < deadline:
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                buf = b""
                async for data in resp.content.iter_any():
                    buf += data
                    while (cut := buf.find(b"\n\n")) >= 0:
                        line, buf = buf[:cut], buf[cut + 2:]
                        if line.startswith(b"data: {"):
                            event = orjson.loads(line[6:])
                            for choice in event.get("choices") or ():
                                if choice.get("delta", {}).get("content"):
                                    chunks += 1
            done += 1

    connector = aiohttp.TCPConnector(limit=parallel)
    async with aiohttp.ClientSession(connector=connector) as session:
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(parallel)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    return done, chunks, cpu / wall if wall else 0.0  # requests, chunks, CPU share


def plain(url: str, seconds: float, parallel: int) -> dict[str, float]:
    import uvloop

    t0 = time.perf_counter()
    done, chunks, share = uvloop.run(_plain_client(url, seconds, parallel))
    wall = time.perf_counter() - t0
    assert chunks == done * CHUNKS_PER_STREAM, (chunks, done)
    return {"rps": done / wall, "chunks": chunks / wall, "cpu_ms": share * wall / done * 1000}


def evalsvc_run(url: str, seconds: float, parallel: int, work_dir: str, workers: int = 1,
                ray_address: str | None = None) -> dict[str, float]:
    config = PerfConfig(model="rig", url=url, dataset="random", prompt_tokens=16, max_tokens=128, stream=True,
                        number=10_000_000, parallel=parallel, duration=seconds, workers=workers,
                        warmup=parallel, record_requests=False, report=False, work_dir=work_dir,
                        ray_address=ray_address)
    result = run_perf(config)
    (run,) = result.results.values()
    m = run.metrics
    if m["requests_failed"]:
        raise SystemExit(f"evalsvc saw failures against the rig: {m['failures_by_kind']}")
    shares = [c["cpu_share"] or 0.0 for c in m["clients"]] if m["clients"] else [m["client_cpu_share"] or 0.0]
    cpu_s = sum(shares) * m["duration_s"]
    return {"rps": m["request_throughput"], "chunks": m["request_throughput"] * CHUNKS_PER_STREAM,
            "cpu_ms": cpu_s / m["requests_succeeded"] * 1000}


def main() -> None:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--parallel", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ray", action="store_true", help="also 3 Ray actors on a local 3-node cluster")
    parser.add_argument("--rig", type=Path, default=here.parent.parent / "shared" / "rig")
    args = parser.parse_args()
    body = (args.rig / "chat_stream.sse").read_bytes()
    print("parse cost of the rig's 128-chunk stream, µs CPU per stream (OpenAI dialect):")
    print(f"  {'reads':<18} {'per-read choice':>16} {'scan only':>10}")
    for name, (decoded, scanned) in parse_costs(body).items():
        print(f"  {name:<18} {decoded:16.1f} {scanned:10.1f}")
    print(f"  plain orjson, one event a read: {plain_parse_cost(body):.1f}\n")
    if shutil.which("nginx") is None:
        raise SystemExit("nginx is not installed (apt-get install nginx)")
    run_dir = Path(tempfile.mkdtemp(prefix="evalsvc-rig-"))
    work_dir = tempfile.mkdtemp(prefix="evalsvc-trickle-")
    port, nginx = start_rig(args.rig, run_dir)
    url = f"http://127.0.0.1:{port}/trickle/v1/chat/completions"
    import contextlib

    with contextlib.ExitStack() as stack:
        ray_address = None
        if args.ray:
            from tests._ray import local_cluster

            print("starting a local 3-node Ray cluster ...")
            ray_address = stack.enter_context(local_cluster(nodes=3, num_cpus=1)).address
        print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; TRICKLE_RATE "
              f"{os.environ.get('TRICKLE_RATE', '64k')}, parallel {args.parallel}, {args.seconds:g}s per "
              f"measurement, best of {args.rounds} rounds\n")
        clients: dict[str, Any] = {
            "plain aiohttp+orjson": lambda: plain(url, args.seconds, args.parallel),
            "evalsvc x1": lambda: evalsvc_run(url, args.seconds, args.parallel, work_dir),
            "evalsvc x1 scan-only": lambda: _scan_only(url, args.seconds, args.parallel, work_dir),
            "evalsvc workers=2": lambda: evalsvc_run(url, args.seconds, args.parallel, work_dir, workers=2),
        }
        if ray_address:
            clients["evalsvc ray x3"] = lambda: evalsvc_run(url, args.seconds, args.parallel, work_dir, workers=3,
                                                            ray_address=ray_address)
        best: dict[str, dict[str, float]] = {}
        try:
            for _ in range(args.rounds):
                for name, measure in clients.items():
                    got = measure()
                    if name not in best or got["chunks"] > best[name]["chunks"]:
                        best[name] = got
        finally:
            nginx.terminate()
            nginx.wait()
            shutil.rmtree(work_dir, ignore_errors=True)
            shutil.rmtree(run_dir, ignore_errors=True)
    ref = best["plain aiohttp+orjson"]
    print(f"{'client':<22} {'requests/s':>11} {'chunks/s':>10} {'of plain':>9} {'CPU ms/request':>15}")
    for name, got in best.items():
        print(f"{name:<22} {got['rps']:11.1f} {got['chunks']:10.0f} {got['chunks'] / ref['chunks']:9.1%} "
              f"{got['cpu_ms']:15.2f}")


def _scan_only(url: str, seconds: float, parallel: int, work_dir: str) -> dict[str, float]:
    OpenAIStream._decodes = False
    try:
        return evalsvc_run(url, seconds, parallel, work_dir)
    finally:
        OpenAIStream._decodes = True


if __name__ == "__main__":
    main()
