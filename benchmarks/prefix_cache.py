"""What a shared prompt prefix does to TTFT on a server with a prefix cache: `--prefix-tokens 1024
--prefix-groups 4` against the same prompt lengths with no shared prefix, and against the simulated endpoint's
cache model.

Starts the simulated endpoint with its prefix cache (`cache_tokens`, blocks of 16 tokens) and a prefill cost
(`prefill_ms_per_token`), so TTFT = ttft_ms + prefill_ms_per_token x the prompt tokens not found in the cache.
A chat prompt is one role token, the shared prefix (P words) and the request's own words (n, opening with its
index). One request at a time (parallel 1), so each request finds what the earlier ones left in the cache:
the first request of each of the G groups prefills all 1 + P + n tokens, every later one only the tokens past
the last whole 16-token block inside role + prefix. The run without a shared prefix prefills everything every
time. Printed: TTFT mean and p50 of both runs, the model's prediction for each, and the cache-hit share the
dataset expects next to the one the server counted.

    python benchmarks/prefix_cache.py [--number 100] [--prefix-tokens 1024] [--prefix-groups 4] [--rest 256]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from evalsvc import PerfConfig, run_perf
from tests._servers import start_mock

BLOCK = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=100)
    parser.add_argument("--prefix-tokens", type=int, default=1024)
    parser.add_argument("--prefix-groups", type=int, default=4)
    parser.add_argument("--rest", type=int, default=256, help="each prompt's own tokens after the prefix")
    parser.add_argument("--ttft-ms", type=float, default=20.0)
    parser.add_argument("--prefill-ms-per-token", type=float, default=0.05)
    args = parser.parse_args()
    p, g, n, rest = args.prefix_tokens, args.prefix_groups, args.number, args.rest
    total = 1 + p + rest
    hit = (1 + p) // BLOCK * BLOCK
    miss_ms = args.ttft_ms + args.prefill_ms_per_token * total
    hit_ms = args.ttft_ms + args.prefill_ms_per_token * (total - hit)
    firsts = min(g, n)
    with start_mock(ttft_ms=args.ttft_ms, itl_ms=0, output_tokens=4, prefill_ms_per_token=args.prefill_ms_per_token,
                    cache_tokens=10_000_000, cache_block_tokens=BLOCK) as mock, tempfile.TemporaryDirectory() as out:
        common = dict(model="mock-model", url=mock.chat_url, dataset="random", max_tokens=4, number=n, parallel=1,
                      preflight=False, work_dir=out, record_requests=False)
        print(f"{n} requests one at a time, prompts of {total} tokens (role + {p} prefix + {rest} own), "
              f"ttft {args.ttft_ms:g} ms + {args.prefill_ms_per_token:g} ms per uncached token, "
              f"{os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f})")
        print(f"{'prompts':<34} {'TTFT mean':>10} {'predicted':>10} {'TTFT p50':>10} {'predicted':>10}")
        shared = run_perf(PerfConfig(prompt_tokens=rest, prefix_tokens=p, prefix_groups=g, **common))
        stats = mock.stats()
        mock.reset()  # an empty cache for the run without a shared prefix
        ttft = next(iter(shared.results.values())).to_dict()["percentiles"]["ttft_ms"]
        mean = (firsts * miss_ms + (n - firsts) * hit_ms) / n
        median = statistics.median([miss_ms] * firsts + [hit_ms] * (n - firsts))
        print(f"{f'shared prefix ({g} groups of {p})':<34} {ttft['mean']:>8.1f}ms {mean:>8.1f}ms "
              f"{ttft['p50']:>8.1f}ms {median:>8.1f}ms")
        distinct = run_perf(PerfConfig(prompt_tokens=p + rest, **common))
        ttft = next(iter(distinct.results.values())).to_dict()["percentiles"]["ttft_ms"]
        print(f"{'no shared prefix':<34} {ttft['mean']:>8.1f}ms {miss_ms:>8.1f}ms {ttft['p50']:>8.1f}ms "
              f"{miss_ms:>8.1f}ms")
        expected = shared.info["dataset"]["expected_cache_hit_share"]
        print(f"cache-hit share: expected by the dataset {expected:.4f}, counted by the server "
              f"{stats['cache']['hit_share']:.4f} (the server also counts the role token)")


if __name__ == "__main__":
    main()
