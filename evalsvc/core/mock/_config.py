"""MockConfig: what the simulated endpoint does, validated once before it starts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .._validate import check_type, from_mapping, require_range, require_text
from ._faults import FAULT_KINDS, slot_counts
from ._text import load_answers

DEFAULT_TTFT_MS = 200.0
DEFAULT_ITL_MS = 20.0
DEFAULT_OUTPUT_TOKENS = 128
DEFAULT_FAULT_CYCLE = 1000
DEFAULT_MODEL = "mock-model"


@dataclass(frozen=True, kw_only=True)
class MockConfig:
    """A simulated OpenAI-compatible endpoint: its timing, its answers and the faults it injects.

    Fault shares are fractions of requests in [0, 1]. They are exact, not random draws: the server
    deals the kinds over a seeded permutation of `fault_cycle` slots, repeated, so any `fault_cycle`
    consecutive generation requests (in arrival order) carry exactly round(share * fault_cycle) of each.
    """

    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = 8000
    """TCP port; 0 picks a free one."""
    model: str = DEFAULT_MODEL
    """Model id listed by /v1/models (requests may name any model; it is echoed back)."""
    ttft_ms: float = DEFAULT_TTFT_MS
    """Time from request received to the first content chunk."""
    itl_ms: float = DEFAULT_ITL_MS
    """Gap between consecutive content chunks."""
    output_tokens: int = DEFAULT_OUTPUT_TOKENS
    """Tokens generated per request, cut to the request's max_tokens, raised to its min_tokens."""
    tokens_per_chunk: int = 1
    """Tokens packed in one streamed content chunk (`itl_ms` stays the gap between chunks)."""
    jitter_ms: float = 0.0
    """Each chunk deadline moves by a seeded uniform draw in [-jitter_ms, +jitter_ms] (never before the previous
    one)."""
    role_chunk: bool = True
    """Chat streams open with a role-only chunk (as vLLM's do), sent as soon as the request arrives."""
    separate_finish_chunk: bool = False
    """Send finish_reason in its own chunk with an empty delta, instead of on the last content chunk."""
    seed: int = 0
    """Seeds the fault permutation and the jitter."""
    fault_cycle: int = DEFAULT_FAULT_CYCLE
    """Length of the repeated fault permutation: shares are exact over any window of this many requests."""
    error_500: float = 0.0
    """Share of requests answered 500 with an OpenAI-style error body."""
    error_429: float = 0.0
    """Share answered 429 with Retry-After and an OpenAI-style error body."""
    drop_mid_stream: float = 0.0
    """Share whose connection is aborted half-way (stream: after half the chunks; non-stream: half the body)."""
    malformed_sse: float = 0.0
    """Share with one `data:` line that is not valid JSON mid-stream (non-stream: a body that is not valid JSON)."""
    no_done: float = 0.0
    """Share whose stream ends cleanly with neither finish_reason nor [DONE] (non-stream: finish_reason null)."""
    empty_completion: float = 0.0
    """Share answered 200, well-formed and finished, with no content and 0 completion tokens."""
    retry_after_s: int = 1
    """Retry-After value sent with 429 answers, in seconds."""
    answers: str | list[dict[str, str]] | None = None
    """Path to a JSON list or JSONL file of {"match", "reply"} rows, or the rows themselves."""

    def __post_init__(self) -> None:
        require_text("host", self.host)
        check_type("port", self.port, int)
        require_range("port", self.port, low=0, high=65535)
        require_text("model", self.model)
        for name in ("ttft_ms", "itl_ms", "jitter_ms"):
            value = getattr(self, name)
            require_range(name, value, low=0, high=86_400_000)
            object.__setattr__(self, name, float(value))
        for name, high in (("output_tokens", 10_000_000), ("tokens_per_chunk", 1_000_000)):
            check_type(name, getattr(self, name), int)
            require_range(name, getattr(self, name), low=1, high=high)
        for name in ("role_chunk", "separate_finish_chunk"):
            check_type(name, getattr(self, name), bool)
        check_type("seed", self.seed, int)
        check_type("fault_cycle", self.fault_cycle, int)
        require_range("fault_cycle", self.fault_cycle, low=1, high=10_000_000)
        for kind in FAULT_KINDS:
            value = getattr(self, kind)
            require_range(kind, value, low=0, high=1)
            object.__setattr__(self, kind, float(value))
        slot_counts(self.fault_shares(), self.fault_cycle)  # raises when shares cannot be dealt exactly
        check_type("retry_after_s", self.retry_after_s, int)
        require_range("retry_after_s", self.retry_after_s, low=0, high=86_400)
        # Parsed once here so a bad table is a ConfigError before the server starts; kept off the fields.
        object.__setattr__(self, "_answer_rows", load_answers(self.answers))

    def fault_shares(self) -> dict[str, float]:
        """The share of each fault kind, in FAULT_KINDS order."""
        return {kind: getattr(self, kind) for kind in FAULT_KINDS}

    def answer_rows(self) -> tuple[tuple[str, str], ...]:
        """The answers table as (match, reply) pairs, in order (empty without `answers`)."""
        # set in __post_init__ beside the dataclass fields, so only getattr reaches it
        rows: tuple[tuple[str, str], ...] = getattr(self, "_answer_rows")  # noqa: B009
        return rows

    @classmethod
    def from_dict(cls, data: Any) -> MockConfig:
        """Build from a JSON-like dict: unknown fields and wrong types raise ConfigError."""
        return from_mapping(cls, data)

    def replace(self, **changes: Any) -> MockConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

