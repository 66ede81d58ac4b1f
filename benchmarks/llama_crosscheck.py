"""Cross-check evalsvc's TTFT and TPOT against a real server's own clock (llama.cpp's `timings`).

llama.cpp's server reports, in the last chunk of a stream, how long it spent on the prompt (`prompt_ms`)
and per generated token (`predicted_per_token_ms`), measured inside the server. The script measures the
same prompts with `run_perf` (parallel 1, prompt cache off, EOS ignored so every answer has the same
length), then replays them with a plain client that JSON-decodes every chunk and also reads the server's
timings, and prints the three sets of medians side by side.

    python benchmarks/llama_crosscheck.py                 # starts ../shared/peers/llama-server.sh on a free port
    python benchmarks/llama_crosscheck.py --url http://127.0.0.1:8713/v1/chat/completions
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from _peer import PEER, start_llama, stop_llama  # benchmarks/_peer.py
from evalsvc import PerfConfig, run_perf

MODEL = "smollm2-135m-instruct"


async def replay(url: str, bodies: list[dict]) -> list[dict]:
    """Send each body with a plain client that decodes every chunk: the server's timings plus its own view."""
    out = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        for body in bodies:
            sent = time.perf_counter()
            async with session.post(url, json=body) as resp:
                stamps, last = [], None
                async for line in resp.content:
                    if not line.startswith(b"data: {"):
                        continue
                    event = json.loads(line[6:])
                    if any((c.get("delta") or {}).get("content") for c in event.get("choices") or ()):
                        stamps.append(time.perf_counter())
                    if "timings" in event:
                        last = event
                if last is None:
                    raise SystemExit("the server sent no timings: is it llama.cpp's llama-server?")
                n = last["usage"]["completion_tokens"]
                out.append({**last["timings"], "client_ttft_ms": (stamps[0] - sent) * 1000,
                            "client_tpot_ms": (stamps[-1] - stamps[0]) * 1000 / (n - 1)})
    return out


def _one_prompt(work: str, text: str) -> str:
    path = Path(work) / "prompt.jsonl"
    path.write_text(json.dumps({"prompt": text}) + "\n")
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="chat/completions URL of a running llama-server (default: start one)")
    parser.add_argument("--number", type=int, default=12)
    parser.add_argument("--prompt-tokens", type=int, default=96)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--peer", type=Path, default=PEER)
    args = parser.parse_args()

    port = None
    url = args.url
    if url is None:
        port, url = start_llama(args.peer)
    try:
        extra = {"ignore_eos": True, "cache_prompt": False}
        base_config = PerfConfig(model=MODEL, url=url, dataset="random", prompt_tokens=args.prompt_tokens,
                                 max_tokens=args.max_tokens, number=args.number, parallel=1, extra_body=extra)
        from evalsvc.core.perf.datasets import load_prompts

        prompts, _ = load_prompts(base_config, args.number)
        bodies = [{"model": MODEL, "messages": [{"role": "user", "content": p.text}], "max_tokens": args.max_tokens,
                   "temperature": 0.0, "stream": True, "stream_options": {"include_usage": True}, **extra}
                  for p in prompts]
        # evalsvc and the plain client take turns, one request each, so load swings on this shared machine
        # hit both alike; both send the same prompt each turn
        ttft, tpot, timings = [], [], []
        with tempfile.TemporaryDirectory() as work:
            for i in range(args.number):
                one = base_config.replace(number=1, work_dir=work, seed=base_config.seed)
                result = run_perf(one.replace(dataset="custom", dataset_path=_one_prompt(work, prompts[i].text)))
                (run,) = result.results.values()
                if run.metrics["requests_succeeded"] != 1:
                    raise SystemExit(f"request failed: {run.metrics['failures_by_kind']}")
                ttft.append(run.metrics["ttft_ms_p50"])
                tpot.append(run.metrics["tpot_ms_p50"])
                timings += asyncio.run(replay(url, bodies[i:i + 1]))
        p = {"ttft_ms": {"p50": statistics.median(ttft)}, "tpot_ms": {"p50": statistics.median(tpot)}}
        m = {"requests_succeeded": len(ttft), "output_tokens_source": run.metrics["output_tokens_source"]}
        med = {k: statistics.median(t[k] for t in timings)
               for k in ("prompt_ms", "predicted_per_token_ms", "client_ttft_ms", "client_tpot_ms")}
        print(f"{args.number} requests, parallel 1, ~{args.prompt_tokens}-token prompts, {args.max_tokens} tokens out "
              f"(succeeded {m['requests_succeeded']}, output tokens from {m['output_tokens_source']})\n")
        print(f"{'median':<8}{'evalsvc':>12}{'plain client (replay)':>24}{'llama-server own clock':>26}")
        print(f"{'TTFT':<8}{p['ttft_ms']['p50']:>10.1f}ms{med['client_ttft_ms']:>22.1f}ms"
              f"{med['prompt_ms']:>20.1f}ms (prompt)")
        print(f"{'TPOT':<8}{p['tpot_ms']['p50']:>10.2f}ms{med['client_tpot_ms']:>22.2f}ms"
              f"{med['predicted_per_token_ms']:>20.2f}ms (decode)")
        print(f"\nevalsvc / plain client: TTFT {p['ttft_ms']['p50'] / med['client_ttft_ms']:.3f}, "
              f"TPOT {p['tpot_ms']['p50'] / med['client_tpot_ms']:.3f}. The server's own figures leave out "
              "what it does between tokens outside the decode step (sampling, detokenizing, sending).")
    finally:
        if port is not None:
            stop_llama(port, args.peer)


if __name__ == "__main__":
    main()
