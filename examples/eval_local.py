"""Evaluate a served model on benchmarks from local copies of the datasets (no hub access needed).

    python examples/eval_local.py --api-url http://127.0.0.1:8000/v1 --model mock-model \
        --dataset-dir ./datasets --datasets gsm8k iquiz --limit 5
"""

from __future__ import annotations

import argparse

from evalsvc import EvalConfig, run_eval


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="mock-model")
    parser.add_argument("--datasets", nargs="+", default=["gsm8k"])
    parser.add_argument("--dataset-dir", default=None)
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--work-dir", default="outputs")
    args = parser.parse_args()

    config = EvalConfig(model=args.model, api_url=args.api_url, datasets=args.datasets, limit=args.limit,
                        dataset_dir=args.dataset_dir, work_dir=args.work_dir)
    result = run_eval(config)
    for name, row in result.to_dict()["result"].items():
        flag = "  (incomplete: some samples errored)" if row["incomplete"] else ""
        print(f"{name:<10} {row['metric']}={row['score']}  scored {row['scored']}/{row['requested']}{flag}")
    print(f"outputs: {result.output_dir}")


if __name__ == "__main__":
    main()
