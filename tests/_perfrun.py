"""What the load-test engine tests share: a config against the simulated endpoint, and reading a run back."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from evalsvc import PerfConfig


def cfg(url: str, tmp_path: Path, **kw: Any) -> PerfConfig:
    """A small streamed load test of `url` writing under `tmp_path`; `kw` overrides any field."""
    base: dict[str, Any] = dict(model="mock-model", url=url, dataset="random", prompt_tokens=8, max_tokens=64,
                                number=20, parallel=4, work_dir=str(tmp_path),
                                preflight=False)  # engine tests: the server sees only the run (test_perf_preflight.py)
    base.update(kw)
    return PerfConfig(**base)


def only(result: Any) -> dict[str, Any]:
    """The one sweep point of a result, as its summary_<key>.json holds it."""
    (run,) = result.results.values()
    return run.to_dict()  # type: ignore[no-any-return]


def records(result: Any) -> list[dict[str, Any]]:
    """The request records of a one-point run."""
    (path,) = Path(result.output_dir).glob("requests_*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def mooncake_trace(path: Path, n: int = 2000, span_ms: int = 2000, seed: int = 5) -> list[dict[str, Any]]:
    """A Mooncake-format trace of `n` requests over about `span_ms`: sorted integer ms timestamps (some equal),
    prompts of 20-1100 tokens whose leading hash ids repeat (32 conversation roots), outputs of 1-6 tokens."""
    rng = random.Random(seed)
    stamps = sorted(rng.randrange(span_ms) for _ in range(n - 1))
    rows = []
    for t in [0, *stamps]:
        length = rng.randrange(20, 1100)
        blocks = -(-length // 512)
        root = rng.randrange(32)
        hash_ids = [root * 1000 + b for b in range(blocks - 1)] + [10**6 + len(rows)]
        rows.append({"timestamp": t, "input_length": length, "output_length": rng.randrange(1, 7),
                     "hash_ids": hash_ids})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows
