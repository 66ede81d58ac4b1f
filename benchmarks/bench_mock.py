"""How faithfully `evalsvc mock` keeps its injected timing under concurrency, and what it costs.

Starts the mock in its own process (ttft 200 ms, itl 20 ms, 128 tokens by default) and drives it at
concurrency 1 (the reference) and 128 with a lean streaming client (uvloop, byte scanning, no
per-chunk JSON): staggered starts, as a closed-loop test with varied latencies settles into; all in
lockstep, the worst case (and what a closed loop against a jitter-free mock keeps); and lockstep again
from raw keep-alive sockets, which takes most of the client's own cost out. It prints the client's
TTFT / TPOT medians against the injected values, the chunk rate, the CPU share of the mock process,
and the mock's own account of how late its chunks left (schedule_lag_ms in /mock/stats).

    python benchmarks/bench_mock.py [--parallel 128] [--rounds 3] [--ttft-ms 200] [--itl-ms 20] [--tokens 128]

TTFT: first chunk carrying content (not the role chunk) - send time. TPOT: (last - first content
chunk) / (tokens - 1). Both include the loopback and client overhead, which the reference run shows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import selectors
import socket
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests._servers import start_mock

_MARK = b'"delta":{"content":'


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _one(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[float, float, int]:
    sent = time.perf_counter()
    first = last = 0.0
    chunks = 0
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 200, resp.status
        async for data in resp.content.iter_any():
            seen = data.count(_MARK)
            if seen:
                now = time.perf_counter()
                if not chunks:
                    first = now
                last = now
                chunks += seen
    return (first - sent) * 1000, (last - first) * 1000 / max(chunks - 1, 1), chunks


async def _run(url: str, parallel: int, rounds: int, tokens: int, stagger_s: float) -> dict[str, float]:
    """`parallel` workers each send `rounds` requests back to back; worker i starts at i * stagger_s / parallel."""
    body = (b'{"model":"m","stream":true,"max_tokens":%d,'
            b'"messages":[{"role":"user","content":"hello"}]}' % tokens)
    connector = aiohttp.TCPConnector(limit=parallel)
    async with aiohttp.ClientSession(connector=connector, trust_env=False, read_bufsize=1 << 18) as session:
        results: list[tuple[float, float, int]] = []

        async def worker(i: int) -> None:
            await asyncio.sleep(i * stagger_s / parallel)
            for _ in range(rounds):
                results.append(await _one(session, url, body))

        start = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(parallel)))
        wall = time.perf_counter() - start
    ttft = sorted(r[0] for r in results)
    tpot = sorted(r[1] for r in results)
    chunks = sum(r[2] for r in results)
    assert all(r[2] == tokens for r in results), "short stream"
    return {"ttft_p50": statistics.median(ttft), "ttft_p99": ttft[round(0.99 * (len(ttft) - 1))],
            "tpot_p50": statistics.median(tpot), "tpot_p99": tpot[round(0.99 * (len(tpot) - 1))],
            "chunks_per_s": chunks / wall, "wall_s": wall, "requests": len(results)}


def _raw_lockstep(port: int, parallel: int, rounds: int, tokens: int) -> dict[str, float]:
    """Near-zero client overhead: keep-alive sockets, each round's requests written in one tight loop."""
    body = (b'{"model":"m","stream":true,"max_tokens":%d,'
            b'"messages":[{"role":"user","content":"hello"}]}' % tokens)
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: mock\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(parallel)]
    selector = selectors.DefaultSelector()
    for i, sock in enumerate(socks):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        selector.register(sock, selectors.EVENT_READ, i)
    ttft: list[float] = []
    tpot: list[float] = []
    chunks_total = 0
    start = time.perf_counter()
    try:
        for _ in range(rounds):
            sent, first, last = [0.0] * parallel, [0.0] * parallel, [0.0] * parallel
            seen, done = [0] * parallel, [False] * parallel
            for i, sock in enumerate(socks):
                sent[i] = time.perf_counter()
                sock.sendall(request)
            left = parallel
            while left:
                for key, _ in selector.select():
                    i = key.data
                    data = key.fileobj.recv(1 << 16)  # type: ignore[union-attr]
                    now = time.perf_counter()
                    marks = data.count(_MARK)
                    if marks:
                        first[i] = first[i] or now
                        last[i] = now
                        seen[i] += marks
                    if not done[i] and data.endswith(b"0\r\n\r\n"):
                        done[i], left = True, left - 1
            assert all(n == tokens for n in seen), "short stream"
            chunks_total += sum(seen)
            ttft += [(f - s) * 1000 for f, s in zip(first, sent, strict=True)]
            tpot += [(b - a) * 1000 / (tokens - 1) for a, b in zip(first, last, strict=True)]
    finally:
        for sock in socks:
            sock.close()
    wall = time.perf_counter() - start
    ttft.sort()
    tpot.sort()
    return {"ttft_p50": statistics.median(ttft), "ttft_p99": ttft[round(0.99 * (len(ttft) - 1))],
            "tpot_p50": statistics.median(tpot), "tpot_p99": tpot[round(0.99 * (len(tpot) - 1))],
            "chunks_per_s": chunks_total / wall, "wall_s": wall, "requests": len(ttft)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parallel", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ttft-ms", type=float, default=200)
    parser.add_argument("--itl-ms", type=float, default=20)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    with start_mock(ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, output_tokens=args.tokens) as mock:
        pid = mock.process.pid
        print(f"mock: ttft {args.ttft_ms:g} ms, itl {args.itl_ms:g} ms, {args.tokens} tokens; "
              f"client and mock in separate processes on {os.cpu_count()} cores")
        request_s = (args.ttft_ms + (args.tokens - 1) * args.itl_ms) / 1000
        print(f"{'run':>20} {'requests':>8} {'ttft p50':>9} {'err':>7} {'ttft p99':>9} {'tpot p50':>9} "
              f"{'err':>7} {'tpot p99':>9} {'chunks/s':>9} {'mock cpu':>9} {'mock lag p50/p99/max':>21}")
        runs = (("1 stream", 1, 3, 0.0), (f"{args.parallel} staggered", args.parallel, args.rounds, request_s),
                (f"{args.parallel} in lockstep", args.parallel, args.rounds, 0.0),
                (f"{args.parallel} lockstep, raw", args.parallel, args.rounds, -1.0))
        for name, parallel, rounds, stagger in runs:
            mock.reset()
            cpu0, t0 = _cpu_seconds(pid), time.perf_counter()
            if stagger < 0:
                r = _raw_lockstep(mock.port, parallel, rounds, args.tokens)
            else:
                r = asyncio.run(_run(mock.chat_url, parallel, rounds, args.tokens, stagger))
            cpu = (_cpu_seconds(pid) - cpu0) / (time.perf_counter() - t0)
            lag = mock.stats()["schedule_lag_ms"]["all_chunks"]
            print(f"{name:>20} {r['requests']:>8.0f} {r['ttft_p50']:>7.1f}ms "
                  f"{(r['ttft_p50'] / args.ttft_ms - 1) * 100:>+6.2f}% {r['ttft_p99']:>7.1f}ms "
                  f"{r['tpot_p50']:>7.2f}ms {(r['tpot_p50'] / args.itl_ms - 1) * 100:>+6.2f}% "
                  f"{r['tpot_p99']:>7.2f}ms {r['chunks_per_s']:>9.0f} {cpu * 100:>8.1f}% "
                  f"{lag['p50']:>6.2f}/{lag['p99']:.2f}/{lag['max']:.1f}ms")

if __name__ == "__main__":
    main()
