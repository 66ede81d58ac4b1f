"""The simulated endpoint (`evalsvc mock`): an OpenAI-compatible server with set delays, exact faults
and fixed answers, for trying evalsvc and for testing it over real HTTP.

    from evalsvc.core.mock import MockConfig, run_mock
    run_mock(MockConfig(port=8000, ttft_ms=200, itl_ms=20, error_500=0.1))

Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health,
GET /mock/stats (counters), GET /mock/requests (bodies, with capture_requests), POST /mock/reset (clears the
counters, the prefix cache and the captured bodies, and restarts the fault plan).
The same server speaks the other dialects, one module each (timing, faults and answers alike):
DashScope (_dashscope.py, POST /api/v1/services/aigc/text-generation/generation), Anthropic
messages (_anthropic.py, POST /v1/messages) and Gemini (_gemini.py, POST
/v1beta/models/{model}:generateContent and :streamGenerateContent).
The rest of this docstring describes the OpenAI dialect.

Streams (`"stream": true`): SSE `data: {...}\\n\\n` events ending with `data: [DONE]\\n\\n`. A chat stream
opens with a role-only chunk `{"role": "assistant", "content": ""}` sent at once (so a client that stops
its TTFT clock there measures ~0), then one chunk per token (`tokens_per_chunk` packs several); the
last content chunk carries finish_reason ("length" when max_tokens cut the answer, else "stop"), or a
chunk of its own with `separate_finish_chunk`. With `stream_options.include_usage` a usage event with
empty `choices` comes before [DONE]. Non-streaming answers always carry usage.

Timing: content chunk i leaves at first + i * itl_ms, on absolute deadlines (late wake-ups never add up);
a non-streaming answer leaves at the last chunk's deadline. first = start + ttft_ms + prefill_ms_per_token
x (prompt tokens not in the prefix cache), start being when the request's first bytes arrived or, with
`max_batch`, when one of the K generation slots freed (waiters are served in arrival order). With
`itl_per_request_ms` A, each gap is itl_ms + A x (other requests decoding when the previous chunk left).
/mock/stats reports how late chunks left (schedule_lag_ms), the queue and the prefix cache.

Prefix cache (`cache_tokens` > 0): the prompt, as words (chat: a `<role>` word before each message's words),
is cut into blocks of `cache_block_tokens`, each identified by a hash chained over all blocks before it;
a lookup counts the leading blocks held, the prompt's blocks are stored (LRU) when its first token is out.

Tokens: the answer has min(output_tokens, max_tokens) tokens (exactly max_tokens with `ignore_eos: true`),
raised to min_tokens when sent. A token
is a word with the whitespace before it. usage.prompt_tokens counts the whitespace-separated words
of the prompt (completions) or of every message's text (chat); a prompt of token ids counts the ids.

Answers: with `answers`, the first row whose `match` is a substring of the last user message (chat)
or of the prompt (completions) gives the reply, streamed token by token and cut only by max_tokens;
other requests get filler text of output_tokens tokens.

Faults (see MockConfig and FAULT_KINDS): dealt over a seeded permutation of `fault_cycle` slots,
so any `fault_cycle` consecutive generation requests carry exactly round(share * fault_cycle) of each
kind. The header `X-Mock-Fault: <kind>` (or `none`) forces one request's fault without using a slot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._config import MockConfig
from ._faults import FAULT_KINDS, FaultPlan

if TYPE_CHECKING:
    from ._server import FAULT_HEADER, MockServer, create_mock_app, run_mock

_SERVER_NAMES = ("FAULT_HEADER", "MockServer", "create_mock_app", "run_mock")


def __getattr__(name: str) -> Any:
    # The server (aiohttp) loads on first use: `evalsvc --help` and the CLI's option table need only MockConfig.
    if name in _SERVER_NAMES:
        from . import _server

        return getattr(_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["FAULT_HEADER", "FAULT_KINDS", "FaultPlan", "MockConfig", "MockServer", "create_mock_app", "run_mock"]
