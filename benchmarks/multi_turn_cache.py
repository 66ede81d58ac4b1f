"""Multi-turn sessions against a server with a real prompt cache: TTFT of turn 1 against turns 2+.

llama.cpp's server keeps each slot's last prompt (`cache_prompt`, on by default) and prefills only what
follows the longest common prefix. A session's later turns repeat the whole history, so with the cache
they prefill only the last answer and the new question, and their TTFT drops. The script writes a
ShareGPT-format file (conversations with a long first question and short follow-ups), runs it with
`multi_turn` through `run_perf`, and runs sessions of the same shape again with the cache off
(`extra_body: {"cache_prompt": false}`) as the reference, alternating the two so machine noise hits both.
Every run gets conversations of new text, so its turn 1 is never in the cache from an earlier run.
It prints turn 1 and turns 2+ TTFT (medians over rounds of the per-run means) for each.

    python benchmarks/multi_turn_cache.py                 # starts ../shared/peers/llama-server.sh on a free port
    python benchmarks/multi_turn_cache.py --url http://127.0.0.1:8713/v1/chat/completions [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
from pathlib import Path
from typing import Any

from _peer import PEER, start_llama, stop_llama  # benchmarks/_peer.py
from evalsvc import PerfConfig, run_perf
from evalsvc.core.perf.datasets._random import WORDS

MODEL = "smollm2-135m-instruct"


def write_conversations(path: Path, conversations: int, first_words: int, follow_words: int, turns: int,
                        tag: int) -> None:
    """Conversations whose text is new for each `tag`: a run must not find the last run's prompts in the
    server's cache, or its turn 1 would not be cold."""
    rng = random.Random(tag)

    def words(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    rows = []
    for c in range(conversations):
        talk = [{"from": "human", "value": f"Run {tag} document {c}: {words(first_words)}. Summarise it."},
                {"from": "gpt", "value": "ok"}]
        for k in range(2, turns + 1):
            talk += [{"from": "human", "value": f"Question {k}: {words(follow_words)}?"},
                     {"from": "gpt", "value": "ok"}]
        rows.append({"id": str(c), "conversations": talk})
    path.write_text(json.dumps(rows), encoding="utf-8")


def one_run(base: PerfConfig, cache: bool) -> dict[str, Any]:
    # ignore_eos: a small model may answer a turn with nothing (an empty answer fails the turn and ends the
    # session); forcing max_tokens keeps every turn's answer, and so the history, the same length
    config = base.replace(extra_body={"cache_prompt": cache, "ignore_eos": True})
    result = run_perf(config)
    (run,) = result.results.values()
    m = run.metrics
    if m["requests_failed"]:
        raise SystemExit(f"requests failed: {m['failures_by_kind']}")
    return m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="chat/completions URL of a running llama-server (default: start one)")
    parser.add_argument("--conversations", type=int, default=4)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--first-words", type=int, default=300)
    parser.add_argument("--follow-words", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--peer", type=Path, default=PEER)
    args = parser.parse_args()

    port = None
    url = args.url
    if url is None:
        port, url = start_llama(args.peer)
    try:
        with tempfile.TemporaryDirectory() as work:
            runs: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
            tag = random.SystemRandom().randrange(10**6)  # new text on every invocation too
            for _ in range(args.rounds):
                for cache in (True, False):
                    tag += 1
                    data = Path(work) / f"sharegpt_{tag}.json"
                    write_conversations(data, args.conversations, args.first_words, args.follow_words, args.turns,
                                        tag)
                    base = PerfConfig(model=MODEL, url=url, dataset="sharegpt", dataset_path=str(data),
                                      multi_turn=True, number=args.conversations * args.turns,
                                      parallel=args.parallel, max_tokens=args.max_tokens, work_dir=work,
                                      report=False, record_requests=False)
                    runs[cache].append(one_run(base, cache))
        print(f"{args.conversations} sessions of {args.turns} turns, {args.parallel} at a time; turn 1 ~"
              f"{args.first_words} words, later turns add the answer (<= {args.max_tokens} tokens) and "
              f"~{args.follow_words} words; {args.rounds} rounds, medians of the per-run means\n")
        print(f"{'llama-server prompt cache':<28}{'TTFT turn 1':>14}{'TTFT turns 2+':>16}{'turns 2+ / 1':>14}"
              f"{'session latency':>18}")
        summary = {}
        for cache in (True, False):
            t1 = statistics.median(m["ttft_ms_turn1_mean"] for m in runs[cache])
            t2 = statistics.median(m["ttft_ms_turn2plus_mean"] for m in runs[cache])
            session = statistics.median(m["session_latency_ms_mean"] for m in runs[cache])
            summary[cache] = (t1, t2)
            print(f"{'on (cache_prompt: true)' if cache else 'off (reference)':<28}{t1:>12.1f}ms{t2:>14.1f}ms"
                  f"{t2 / t1:>14.2f}{session:>16.1f}ms")
        on, off = summary[True], summary[False]
        print(f"\nWith the cache, turns 2+ start {off[1] / on[1]:.1f}x sooner than without it (prompts of the same "
              "shape): "
              "the server prefilled only the new part of the history.")
    finally:
        if port is not None:
            stop_llama(port, args.peer)


if __name__ == "__main__":
    main()
