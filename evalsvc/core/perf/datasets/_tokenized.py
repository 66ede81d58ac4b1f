"""Exact prompt lengths with a local tokenizer (`tokenizer_path`): transformers' AutoTokenizer, offline.

`random` prompts then hold exactly `prompt_tokens` tokens of the prompt text as the tokenizer encodes it
without special tokens (the server's chat template adds its own few on top), checked by re-encoding.
transformers is imported only here, on first use.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from ...errors import DatasetError
from . import Prompt

_MAX_FIX_ROUNDS = 8


@lru_cache(maxsize=4)
def load_tokenizer(path: str) -> Any:
    """The tokenizer in local directory `path` (never downloads).

    Raises:
        DatasetError: the directory is missing, or transformers cannot load a tokenizer from it.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"tokenizer_path: no such directory: {folder}")
    try:
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except ImportError:
        raise DatasetError("tokenizer_path: needs the tokenizer extra: pip install 'evalsvc[tokenizer]'") from None
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError... for a bad folder
        raise DatasetError(f"tokenizer_path: cannot load a tokenizer from {folder}: "
                           f"{type(exc).__name__}: {str(exc)[:200]}") from None


def token_counter(path: str) -> Callable[[str], int]:
    """A function counting the tokens of a text (no special tokens) with the tokenizer at `path`."""
    tok = load_tokenizer(path)
    return lambda text: len(tok.encode(text, add_special_tokens=False))


def exact_prompts(config: Any, lengths: Sequence[int], outputs: Sequence[int], prefixes: Sequence[str],
                  rng: random.Random, words: Sequence[str]) -> tuple[list[Prompt], dict[str, Any]]:
    """Prompt i of exactly `prefix_tokens + lengths[i]` tokens, asking for `outputs[i]` output tokens.

    Each starts with its shared prefix (`prefixes[i % len(prefixes)]`, cut to exactly `prefix_tokens` tokens
    first), then its index (so no two share a cacheable prefix beyond it) and random words; the text is
    encoded, cut to the length, decoded, and re-encoded until the round trip holds the exact count.

    Raises:
        DatasetError: the tokenizer cannot be loaded, or cannot produce a text of that many tokens.
    """
    tok = load_tokenizer(config.tokenizer_path)
    p = config.prefix_tokens

    def encode(text: str) -> list[int]:
        return list(tok.encode(text, add_special_tokens=False))

    # how many tokens a word takes on average with this tokenizer, to draw enough words at once
    sample = " ".join(rng.choice(words) for _ in range(200))
    per_word = max(0.5, len(encode(sample)) / 200)

    def exact(head: str, n: int) -> str:
        want_words = int(n / per_word) + 8
        text = head + " ".join(rng.choice(words) for _ in range(want_words))
        ids = encode(text)
        while len(ids) < n:
            text += " " + " ".join(rng.choice(words) for _ in range(want_words))
            ids = encode(text)
        return _fit(tok, encode, ids[:n], n, words, rng)

    heads = [exact("", p) + " " for _ in prefixes] if p else [""]
    prompts: list[Prompt] = []
    for i, (n, out) in enumerate(zip(lengths, outputs, strict=True)):
        prompts.append(Prompt(text=exact(f"{heads[i % len(heads)]}{i} ", p + n), tokens=p + n, max_tokens=out))
    return prompts, {"prompt_tokens_source": "tokenizer", "tokenizer_path": str(config.tokenizer_path)}


def _fit(tok: Any, encode: Callable[[str], list[int]], ids: list[int], n: int, words: Sequence[str],
         rng: random.Random) -> str:
    """Decode `ids` and nudge the text until it re-encodes to exactly n tokens."""
    for _ in range(_MAX_FIX_ROUNDS):
        text: str = tok.decode(ids, skip_special_tokens=True)
        again = encode(text)
        if len(again) == n:
            return text
        if len(again) > n:
            ids = again[:n]  # merges changed across the cut: take the re-encoded prefix
        else:
            ids = again + encode(" " + rng.choice(words))[: n - len(again)]
    raise DatasetError(f"tokenizer_path: could not build a prompt of exactly {n} tokens with this tokenizer")
