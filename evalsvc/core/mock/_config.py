"""MockConfig: what the simulated endpoint does, each field declared once (evalsvc.core.fields).

The declarations give validation, `evalsvc mock`'s options (generated, as for perf and eval) and the
documentation; rules across fields are the `@rule` methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import fields
from ..errors import ConfigError
from ..fields import Cli, Range, field, rule
from ._faults import FAULT_KINDS, slot_counts
from ._text import load_answers

DEFAULT_TTFT_MS = 200.0
DEFAULT_ITL_MS = 20.0
DEFAULT_OUTPUT_TOKENS = 128
DEFAULT_FAULT_CYCLE = 1000
DEFAULT_MODEL = "mock-model"

_MS = (Range(low=0, high=86_400_000),)
_SHARE = (Range(low=0, high=1),)
_FAULT_HELP = "Share of requests in [0, 1], exact over any fault_cycle consecutive requests."


@dataclass(frozen=True, kw_only=True)
class MockConfig:
    """A simulated OpenAI-compatible endpoint: its timing, capacity, prefix cache, answers and faults.

    Fault shares are fractions of requests in [0, 1]. They are exact, not random draws: the server
    deals the kinds over a seeded permutation of `fault_cycle` slots, repeated, so any `fault_cycle`
    consecutive generation requests (in arrival order) carry exactly round(share * fault_cycle) of each.

    The timing model (see evalsvc.core.mock): a request waits for one of `max_batch` slots (FIFO), then
    its first token is due `ttft_ms` + `prefill_ms_per_token` x (prompt tokens not in the prefix cache)
    later; each further token `itl_ms` + `itl_per_request_ms` x (other requests decoding) after the last.
    """

    host: str = field("127.0.0.1", help="Address to listen on.", text=True)
    port: int = field(8000, help="TCP port; 0 picks a free one (the URL printed says which).",
                      ranges=(Range(low=0, high=65535),))
    model: str = field(DEFAULT_MODEL, help="Model id listed by /v1/models (requests may name any model; it is "
                       "echoed back).", text=True)
    ttft_ms: float = field(DEFAULT_TTFT_MS, help="Time from the request's start (its arrival, or the moment a "
                           "slot frees under max_batch) to the first content chunk, before any prefill time.",
                           ranges=_MS)
    itl_ms: float = field(DEFAULT_ITL_MS, help="Gap between consecutive content chunks.", ranges=_MS)
    output_tokens: int = field(DEFAULT_OUTPUT_TOKENS, help="Tokens per answer (cut to the request's max_tokens, "
                               "raised to its min_tokens; max_tokens exactly with ignore_eos).",
                               ranges=(Range(low=1, high=10_000_000),))
    tokens_per_chunk: int = field(1, help="Tokens packed in one streamed content chunk (itl_ms stays the gap "
                                  "between chunks).", ranges=(Range(low=1, high=1_000_000),))
    jitter_ms: float = field(0.0, help="Each chunk deadline moves by a seeded uniform draw in [-jitter_ms, "
                             "+jitter_ms] (never before the previous one).", ranges=_MS)
    max_batch: int = field(0, help="Requests generating at once; further requests wait in a FIFO queue and "
                           "their TTFT includes the wait. 0: no limit.", ranges=(Range(low=0, high=1_000_000),))
    itl_per_request_ms: float = field(0.0, help="Each token gap grows by this much per other request decoding "
                                      "at that moment, as on a batching server.", ranges=_MS)
    prefill_ms_per_token: float = field(0.0, help="Prefill time added to TTFT per prompt token not found in the "
                                        "prefix cache. 0: prompts cost nothing.", ranges=_MS)
    cache_tokens: int = field(0, help="Prefix-cache capacity in prompt tokens (least recently used blocks are "
                              "evicted). 0: no cache, every prompt token is prefilled.",
                              ranges=(Range(low=0, high=10**12),))
    cache_block_tokens: int = field(16, help="The prefix cache works in blocks of this many prompt tokens; a "
                                    "block hits only when it and everything before it are identical.",
                                    ranges=(Range(low=1, high=1_000_000),))
    role_chunk: bool = field(True, help="Open chat streams with a role-only chunk (as vLLM does), sent as soon "
                             "as the request starts.")
    separate_finish_chunk: bool = field(False, help="Send finish_reason in its own chunk with an empty delta, "
                                        "instead of on the last content chunk.")
    capture_requests: bool = field(False, help="Keep every generation request's JSON body, in arrival order "
                                   "(GET /mock/requests; MockServer.captured()).")
    seed: int = field(0, help="Seeds the fault plan and the jitter.")
    fault_cycle: int = field(DEFAULT_FAULT_CYCLE, help="Length of the repeated, shuffled fault plan: shares are "
                             "exact over any window of this many requests.", ranges=(Range(low=1, high=10_000_000),))
    error_500: float = field(0.0, help="Answer 500 with an OpenAI-style error body. " + _FAULT_HELP, ranges=_SHARE)
    error_429: float = field(0.0, help="Answer 429 with Retry-After. " + _FAULT_HELP, ranges=_SHARE)
    drop_mid_stream: float = field(0.0, help="Abort the connection half-way (after half the chunks, or half the "
                                   "body). " + _FAULT_HELP, ranges=_SHARE)
    malformed_sse: float = field(0.0, help="Send one data: line that is not valid JSON mid-stream (non-stream: a "
                                 "body that is not JSON). " + _FAULT_HELP, ranges=_SHARE)
    no_done: float = field(0.0, help="End the stream cleanly with neither finish_reason nor [DONE]. "
                           + _FAULT_HELP, ranges=_SHARE)
    empty_completion: float = field(0.0, help="Answer 200, finished, with no content. " + _FAULT_HELP,
                                    ranges=_SHARE)
    retry_after_s: int = field(1, help="Retry-After seconds sent with 429 answers.",
                               ranges=(Range(low=0, high=86_400),))
    answers: str | list[dict[str, str]] | None = field(
        None, help='JSON list or JSONL file of {"match": ..., "reply": ...} rows (or the rows themselves): the '
        "first row whose match is in the last user message (or prompt) gives the reply; otherwise filler text.",
        cli=Cli(parse="text"))

    def __post_init__(self) -> None:
        fields.validate(self)
        # Parsed once here so a bad table is a ConfigError before the server starts; kept off the fields.
        object.__setattr__(self, "_answer_rows", load_answers(self.answers))

    @rule(*FAULT_KINDS, "fault_cycle")
    def _faults_fit(self) -> None:
        slot_counts(self.fault_shares(), self.fault_cycle)  # raises when shares cannot be dealt exactly

    @rule("cache_tokens", "cache_block_tokens")
    def _cache_holds_a_block(self) -> None:
        if 0 < self.cache_tokens < self.cache_block_tokens:
            raise ConfigError("cache_tokens", f"must hold at least one block of cache_block_tokens "
                              f"({self.cache_block_tokens}), got {self.cache_tokens}")

    def fault_shares(self) -> dict[str, float]:
        """The share of each fault kind, in FAULT_KINDS order."""
        return {kind: float(getattr(self, kind)) for kind in FAULT_KINDS}

    def answer_rows(self) -> tuple[tuple[str, str], ...]:
        """The answers table as (match, reply) pairs, in order (empty without `answers`)."""
        # set in __post_init__ beside the dataclass fields, so only getattr reaches it
        rows: tuple[tuple[str, str], ...] = getattr(self, "_answer_rows")  # noqa: B009
        return rows

    @classmethod
    def from_dict(cls, data: Any) -> MockConfig:
        """Build from a JSON-like dict: unknown fields and wrong types raise ConfigError."""
        return fields.from_dict(cls, data)

    def replace(self, **changes: Any) -> MockConfig:
        """A copy with `changes`, checked again (the answers table is re-read when it changed)."""
        new = fields.replace(self, changes)
        if "answers" in changes:
            object.__setattr__(new, "_answer_rows", load_answers(new.answers))
        return new

    def to_dict(self) -> dict[str, Any]:
        return fields.to_dict(self, redact=False)
