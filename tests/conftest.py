"""Shared pytest fixtures. Append yours; keep each block's helpers beside it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from tests._servers import MockHandle, start_mock

# --- simulated endpoint (evalsvc mock) -------------------------------------------------------------

MOCK_DEFAULTS: dict[str, Any] = {"ttft_ms": 10, "itl_ms": 1, "output_tokens": 16}
"""Options of the session-wide `mock_server`: fast, but with a measurable TTFT and ITL."""


@pytest.fixture(scope="session")
def mock_server() -> Iterator[MockHandle]:
    """One simulated endpoint for the whole session (ttft 10 ms, itl 1 ms, 16 tokens, no faults).

    Shared: use deltas of `stats()`, or `reset()` first, rather than absolute counts.
    """
    with start_mock(**MOCK_DEFAULTS) as server:
        yield server


@pytest.fixture
def mock_factory() -> Iterator[Callable[..., MockHandle]]:
    """Start simulated endpoints with any MockConfig options; each stops when the test ends.

        def test_x(mock_factory):
            mock = mock_factory(ttft_ms=0, itl_ms=0, error_500=0.1)
    """
    with ExitStack() as stack:
        def start(**options: Any) -> MockHandle:
            return stack.enter_context(start_mock(**options))

        yield start


# -- a local tokenizer (perf tokenizer_path) ---------------------------------------------------------------

@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small byte-level BPE tokenizer trained here (no download), saved as a transformers folder."""
    import random

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from evalsvc.core.perf.datasets._random import WORDS

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<s>"])
    rng = random.Random(0)
    tok.train_from_iterator([" ".join(rng.choice(WORDS) for _ in range(50)) for _ in range(200)], trainer)
    folder = tmp_path_factory.mktemp("tokenizer")
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>").save_pretrained(str(folder))
    return str(folder)
