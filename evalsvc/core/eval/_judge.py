"""Which benchmarks evalscope scores with an LLM judge, and the judge configuration evalsvc hands it.

evalscope's metadata flags some judge-scored benchmarks (`requires_judge`); others only declare it in
their adapter class (`scoring_policy = ScoringPolicy.JUDGE_ONLY / JUDGE_DEFAULT`, or the legacy
`llm_judge_default = True`): alpaca_eval and aa_lcr are scored by a judge without the flag. The catalogue
reads both from evalscope's files without importing it (`adapter_facts`); this module decides from them.
"""

from __future__ import annotations

from typing import Any

from ._catalogue import adapter_facts, benchmark_meta

JUDGE_ONLY = "judge_only"
"""A benchmark with no rule scoring at all (evalscope's ScoringPolicy.JUDGE_ONLY)."""
JUDGE_DEFAULT = "judge_default"
"""Rule scoring exists, but a judge scores it by default."""


def judge_policy(name: str) -> str | None:
    """JUDGE_ONLY or JUDGE_DEFAULT when evalscope scores benchmark `name` with an LLM judge, else None (read
    from its adapter's source by the catalogue, `adapter_facts`, or from the legacy metadata flag)."""
    policy = adapter_facts(name).judge
    if policy is None and benchmark_meta(name).get("requires_judge"):
        return JUDGE_DEFAULT
    return policy


def needs_judge(name: str) -> bool:
    """Whether evalscope scores benchmark `name` with an LLM judge by default."""
    return judge_policy(name) is not None


def check_judge_strategy(strategy: str, datasets: list[str]) -> None:
    """Refuse a strategy a benchmark cannot honour (evalscope would fail it after generating every answer).

    Raises:
        ConfigError: field judge.strategy.
    """
    from ..errors import ConfigError

    if strategy != "llm_recall":
        return
    for name in datasets:
        if judge_policy(name) == JUDGE_ONLY:
            raise ConfigError("judge.strategy", f"llm_recall rescores what rules marked wrong, but {name} has no "
                              "rule scoring: use auto or llm")


def generation_options(options: dict[str, Any]) -> dict[str, Any]:
    """evalsvc's generation options as evalscope's GenerateConfig fields (stop -> stop_seqs)."""
    out = {k: v for k, v in options.items() if v is not None}
    if "stop" in out:
        stop = out.pop("stop")
        out["stop_seqs"] = [stop] if isinstance(stop, str) else list(stop)
    return out


def judge_task_config(judge: dict[str, Any], *, retries: int, retry_interval: float) -> dict[str, Any]:
    """evalscope's TaskConfig `judge` for evalsvc's `judge` block (the key in clear: only the worker sees it)."""
    from .._secrets import has_key
    from ._plan import api_base

    generation = generation_options(judge.get("generation_config") or {"temperature": 0.0})
    generation["retries"] = retries + 1
    generation["retry_interval"] = retry_interval
    model: dict[str, Any] = {"model_id": judge["model"], "api_url": api_base(judge["api_url"]),
                             "eval_type": "openai_api", "model_args": {"max_retries": 0},
                             "generation_config": generation}
    if has_key(judge.get("api_key")):
        model["api_key"] = judge["api_key"]
    else:
        model["api_key"] = "EMPTY"
    return {"strategy": judge.get("strategy") or "auto", "models": [model]}
