"""Prompt datasets for load tests. Each dataset is one small module exposing
`load(config, count, rng) -> list[Prompt]` (at most `count` prompts; the engine cycles through them)."""

from __future__ import annotations

import importlib
import random
from dataclasses import dataclass, field
from typing import Any

from ...errors import ConfigError

MAX_UNIQUE_PROMPTS = 4096  # prompts are reused cyclically past this many requests


@dataclass(slots=True)
class Prompt:
    """One request's input: plain text or chat messages, and its length in tokens (estimated or exact)."""

    text: str | None = None
    messages: list[dict[str, Any]] | None = None
    tokens: int = 0
    max_tokens: int | None = None  # per-prompt output length (overrides config.max_tokens)
    meta: dict[str, Any] = field(default_factory=dict)
    turns: list[Prompt] | None = None
    """A conversation's later human turns (one user message each), sent in order after this prompt by a
    multi-turn session, each request carrying the history so far; None for a single-turn prompt."""


_MODULES = {"random": "_random", "line_by_line": "_files", "custom": "_files", "openqa": "_openqa",
            "trace": "_trace", "sharegpt": "_sharegpt"}
UNCAPPED = ("trace",)  # one prompt per request: a trace is replayed as recorded, never cycled


def load_prompts(config: Any, count: int) -> tuple[list[Prompt], dict[str, Any]]:
    """Prompts for a run of `count` requests, and facts about them for the summary.

    Returns:
        (prompts, info) where info has at least `dataset` and `prompt_tokens_source`.
    """
    module = _MODULES.get(config.dataset)
    if module is None:
        raise ConfigError("dataset", f"must be one of {', '.join(_MODULES)}; got {config.dataset!r}")
    try:
        mod = importlib.import_module(f"{__name__}.{module}")
    except ModuleNotFoundError:
        raise ConfigError("dataset", f"the {config.dataset!r} dataset is not available in this version") from None
    rng = random.Random(config.seed)
    limit = count if config.dataset in UNCAPPED else min(count, MAX_UNIQUE_PROMPTS)
    prompts, info = mod.load(config, limit, rng)
    info.setdefault("dataset", config.dataset)
    info["unique_prompts"] = len(prompts)
    return prompts, info
