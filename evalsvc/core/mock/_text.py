"""What the mock says: the answers table, filler text, and its token and word-count rules.

Token rule: a token is a run of non-space characters with the whitespace before it (" fox"); text
that ends in whitespace keeps it on its last token, so the tokens always join back to the text.
Prompt-token rule: usage.prompt_tokens is the number of whitespace-separated words in the prompt
(completions) or in the text of every message (chat); a completions prompt of token ids counts its ids.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson

from ..errors import ConfigError

_TOKEN = re.compile(r"\s*\S+")

_FILLER_WORDS = (
    "The simulated endpoint streams these words one token at a time so that load tests have "
    "something to count while every delay and failure stays under the control of the test"
).split()


def split_tokens(text: str) -> list[str]:
    """Split text into tokens that join back to it exactly (see the module docstring)."""
    tokens = _TOKEN.findall(text)
    rest = len(text) - sum(map(len, tokens))
    if rest:  # trailing whitespace, or a text that is only whitespace
        if tokens:
            tokens[-1] += text[-rest:]
        else:
            tokens.append(text)
    return tokens


def count_words(text: str) -> int:
    """Whitespace-separated words in text: the prompt-token rule."""
    return len(text.split())


class Filler:
    """The filler tokens ("The", " simulated", ...) and their JSON string encodings, grown on demand."""

    __slots__ = ("tokens", "encoded")

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.encoded: list[bytes] = []

    def ensure(self, count: int) -> None:
        """Make at least `count` tokens available."""
        words = _FILLER_WORDS
        for i in range(len(self.tokens), count):
            token = words[i % len(words)] if i == 0 else " " + words[i % len(words)]
            self.tokens.append(token)
            self.encoded.append(orjson.dumps(token))


class Answers:
    """The answers table: the first row whose `match` is a substring of the text gives the reply."""

    __slots__ = ("_rows", "_tokens")

    def __init__(self, rows: tuple[tuple[str, str], ...]) -> None:
        self._rows = rows
        self._tokens: dict[int, list[str]] = {}

    def __bool__(self) -> bool:
        return bool(self._rows)

    def find(self, text: str) -> list[str] | None:
        """The reply tokens of the first row matching `text`, or None when no row matches."""
        for i, (match, reply) in enumerate(self._rows):
            if match in text:
                tokens = self._tokens.get(i)
                if tokens is None:
                    tokens = self._tokens[i] = split_tokens(reply)
                return tokens
        return None


def load_answers(value: str | list[dict[str, str]] | None) -> tuple[tuple[str, str], ...]:
    """Read and check an answers table.

    Args:
        value: a path to a JSON file holding a list of rows or to a JSONL file of rows, the rows
            themselves, or None. A row is {"match": str, "reply": str}; other keys are ignored.

    Returns:
        (match, reply) pairs in table order.

    Raises:
        ConfigError: on field `answers`, naming the file, line or row that is wrong.
    """
    if value is None:
        return ()
    if isinstance(value, (str, Path)):
        rows = _read_table(Path(value))
    elif isinstance(value, (list, tuple)):
        rows = list(value)
    else:
        raise ConfigError("answers", f"expected a file path or a list of rows, got {type(value).__name__}")
    out: list[tuple[str, str]] = []
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise ConfigError("answers", f"row {i} must be an object with 'match' and 'reply'")
        match, reply = row.get("match"), row.get("reply")
        if not isinstance(match, str):
            raise ConfigError("answers", f"row {i} needs a string 'match'")
        if not isinstance(reply, str):
            raise ConfigError("answers", f"row {i} needs a string 'reply'")
        out.append((match, reply))
    return tuple(out)


def _read_table(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("answers", f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("answers", f"cannot read {path}: {exc}") from None
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("answers", f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(data, list):
            raise ConfigError("answers", f"{path} must hold a list of rows")
        return data
    rows: list[Any] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ConfigError("answers", f"{path} line {number} is not valid JSON ({exc.msg})") from None
    return rows
