"""Sweep concurrency against an OpenAI-compatible endpoint and print TTFT / TPOT / throughput per step.

    evalsvc mock --port 8000 &          # or any real endpoint
    python examples/perf_sweep.py --url http://127.0.0.1:8000/v1/chat/completions --model mock-model
"""

from __future__ import annotations

import argparse

from evalsvc import PerfConfig, run_perf


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000/v1/chat/completions")
    parser.add_argument("--model", default="mock-model")
    parser.add_argument("--parallel", default="1,4,16")
    parser.add_argument("--requests-per-slot", type=int, default=4)
    parser.add_argument("--work-dir", default="outputs")
    args = parser.parse_args()

    parallel = [int(p) for p in args.parallel.split(",")]
    config = PerfConfig(model=args.model, url=args.url, dataset="random", prompt_tokens=128, max_tokens=64,
                        parallel=parallel, number=[p * args.requests_per_slot for p in parallel],
                        work_dir=args.work_dir)
    result = run_perf(config)
    print(f"{'run':<28} {'ok':>5} {'req/s':>8} {'ttft p50':>9} {'tpot p50':>9} {'tok/s':>9}")
    for key, run in result.results.items():
        m = run.metrics
        print(f"{key:<28} {m['requests_succeeded']:>5} {m['request_throughput']:>8.2f} "
              f"{m['ttft_ms_p50']:>9.1f} {m['tpot_ms_p50'] or 0:>9.2f} {m['output_throughput']:>9.1f}")
    print(f"outputs: {result.output_dir}")


if __name__ == "__main__":  # client processes are spawned: scripts need this guard when workers > 1
    main()
