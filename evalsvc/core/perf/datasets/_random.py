"""Synthetic prompts of a requested length, no download.

Without a tokenizer the length is approximate: prompts are common short English words, each one token in
the BPE vocabularies of current chat models (GPT, Llama, Qwen), so `prompt_tokens` words are close to
`prompt_tokens` tokens; the chat template adds a few more. The summary says `approximate`.

Each prompt is [shared prefix] + its index + random words. The index keeps the prompts distinct from their
first token after the prefix, so a server's prefix cache can hit only the shared prefix:

- `prefix_tokens` P, `prefix_groups` G: G prefixes of P seeded random words; prompt i takes prefix i mod G
  (round-robin, so every group is used evenly). With N prompts of n_i tokens after the prefix and a cache
  large enough for the G prefixes, every prompt after its group's first can reuse P tokens:
  expected_cache_hit_share = (N − min(G, N))·P / Σ(P + n_i), P/(P + n)·(N − G)/N at a fixed length n.
- lengths (`prompt_tokens`, and `max_tokens` per request) are fixed by default; with `*_stdev` they are drawn
  from a normal distribution around the mean, with `*_min` and `*_max` alone uniformly in [min, max]; drawn
  values are rounded and clipped to [min, max] (min at least 1), seeded with the run's seed.
"""

from __future__ import annotations

import random
from typing import Any

from . import Prompt

WORDS = (
    "the of and to in is was for on are as with his they at be this from have or by one had not but what all "
    "were when we there can an your which their said if do will each about how up out them then she many "
    "some so these would other into has more her two like him see time could no make than first been its who "
    "now people my made over did down only way find use may water long little very after words called just "
    "where most know get through back much go good new write our me man too any day same right look think "
    "also around another came come work three word must because does part even place well such here take why "
    "things help put years different away again off went old number great tell men say small every found "
    "still between name should home big give air line set own under read last never us left end along while "
    "might next sound below saw something thought both few those always looked show large often together "
    "asked house world going want school important until form food keep children feet land side without boy "
    "once animals life enough took sometimes four head above kind began almost live page got earth need far "
    "hand high year mother light parts country father let night following picture being study second eyes "
    "soon times story boys since white days ever paper hard near sentence better best across during today "
    "others however sure means knew its try told young miles sun ways thing whole hear example heard several "
    "change answer room sea against top turned learn point city play toward five using himself usually"
).split()


def draw_lengths(rng: random.Random, count: int, mean: int, stdev: float | None, low: int | None,
                 high: int | None) -> list[int]:
    """`count` lengths: `mean` each; normal(mean, stdev) with a stdev; else uniform in [low, high] when both are
    given. Rounded, and clipped to [low or 1, high]."""
    floor = max(1, low or 1)
    if stdev is None and low is not None and high is not None:
        return [rng.randint(low, high) for _ in range(count)]
    if not stdev:
        drawn = [mean] * count
    else:
        drawn = [round(rng.gauss(mean, stdev)) for _ in range(count)]
    return [min(max(n, floor), high) if high is not None else max(n, floor) for n in drawn]


def words_of(rng: random.Random, n: int) -> list[str]:
    """`n` random common words."""
    choice = rng.choice
    return [choice(WORDS) for _ in range(n)]


def load(config: Any, count: int, rng: random.Random) -> tuple[list[Prompt], dict[str, Any]]:
    lengths = draw_lengths(rng, count, config.prompt_tokens, config.prompt_tokens_stdev, config.prompt_tokens_min,
                           config.prompt_tokens_max)
    outputs = draw_lengths(rng, count, config.max_tokens, config.max_tokens_stdev, config.max_tokens_min,
                           config.max_tokens_max)
    p, groups = config.prefix_tokens, config.prefix_groups
    prefixes = [" ".join(words_of(rng, p)) for _ in range(groups)] if p else []
    if config.tokenizer_path:
        from ._tokenized import exact_prompts

        prompts, info = exact_prompts(config, lengths, outputs, prefixes, rng, WORDS)
    else:
        prompts = []
        for i, (n, out) in enumerate(zip(lengths, outputs, strict=True)):
            # a distinct opening per prompt (after the shared prefix) keeps servers from serving later prompts
            # out of a prefix cache
            words = [str(i), *words_of(rng, n - 1)]
            if prefixes:
                words.insert(0, prefixes[i % groups])
            prompts.append(Prompt(text=" ".join(words), tokens=p + n, max_tokens=out))
        info = {"prompt_tokens_source": "approximate"}
    info["prompt_tokens"] = config.prompt_tokens
    info.update(_length_info("prompt_tokens", config, lengths))
    info.update(_length_info("max_tokens", config, outputs))
    if p:
        n_prompts = len(prompts)
        total = sum(pr.tokens for pr in prompts)
        info.update({"prefix_tokens": p, "prefix_groups": groups,
                     "expected_cache_hit_share": round((n_prompts - min(groups, n_prompts)) * p / total, 6)
                     if total else None})
    return prompts, info


def _length_info(what: str, config: Any, drawn: list[int]) -> dict[str, Any]:
    stdev, low, high = (getattr(config, f"{what}_{k}") for k in ("stdev", "min", "max"))
    if stdev is None and low is None:
        return {}
    shape = "normal" if stdev is not None else "uniform"
    return {f"{what}_distribution": {"shape": shape, "mean": getattr(config, what) if stdev is not None else None,
                                     "stdev": stdev, "min": low, "max": high,
                                     "drawn_mean": round(sum(drawn) / len(drawn), 3) if drawn else None,
                                     "drawn_min": min(drawn, default=None), "drawn_max": max(drawn, default=None)}}
