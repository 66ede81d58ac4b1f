"""`trace`: replay a recorded workload at its own times (`dataset_path`, one file).

Two formats, told apart by the file's first non-empty character (`{`: JSONL, else CSV):

- Mooncake JSONL, one request per line: `{"timestamp": 27482, "input_length": 6955, "output_length": 52,
  "hash_ids": [46, 47, ...]}`. `timestamp` is in ms; `hash_ids` (optional) name the prompt's successive
  blocks of 512 tokens: the same id gives the same block text, so requests sharing leading ids share a
  prompt prefix (and hit a server's prefix cache) as they did in the recorded workload.
- BurstGPT CSV with its header: `Timestamp` (s), `Model`, `Request tokens`, `Response tokens`,
  `Total tokens`, `Log Type`; only the timestamp and the two token counts are used. BurstGPT records failed
  requests with 0 response tokens: a length of 0 is sent as 1 (`info.dataset.clipped_rows` counts them).

Each request's prompt is synthesised to its input length from the random dataset's words (approximate
token counts: one common word is about one token): its hash-id blocks first (a block's words are seeded by
the run's seed and the id), then distinct words opening with the request's index, so nothing beyond the
shared blocks can hit a cache. `max_tokens` is the output length (`ignore_eos` also forces it on vLLM /
SGLang). Rows must be in time order; a bad row stops the run before anything is sent with one line naming
the file, the line and the problem.
"""

from __future__ import annotations

import csv
import io
import math
import random
from pathlib import Path
from typing import Any

import orjson

from ...errors import DatasetError
from . import Prompt
from ._random import words_of

BLOCK_TOKENS = 512
"""Tokens per hash id in the Mooncake format."""
BURSTGPT_COLUMNS = ("Timestamp", "Request tokens", "Response tokens")
TIMESTAMP_KEY = "trace_timestamp_ms"
INDEX_KEY = "trace_index"


class _Row:
    __slots__ = ("timestamp_ms", "input_length", "output_length", "hash_ids")

    def __init__(self, timestamp_ms: float, input_length: int, output_length: int,
                 hash_ids: list[int] | None) -> None:
        self.timestamp_ms = timestamp_ms
        self.input_length = input_length
        self.output_length = output_length
        self.hash_ids = hash_ids


def load(config: Any, count: int, rng: random.Random) -> tuple[list[Prompt], dict[str, Any]]:
    """The first `count` requests of the trace as prompts; each prompt's `meta` holds its trace index and
    timestamp (TIMESTAMP_KEY, INDEX_KEY), from which the run takes its schedule."""
    path = Path(config.dataset_path).expanduser()
    rows, fmt, clipped = read_trace(path, count)
    blocks: dict[int, list[str]] = {}

    def block(hash_id: int) -> list[str]:
        words = blocks.get(hash_id)
        if words is None:
            words = blocks[hash_id] = words_of(random.Random(f"{config.seed}:{hash_id}"), BLOCK_TOKENS)
        return words

    prompts = []
    shared = 0
    for i, row in enumerate(rows):
        words: list[str] = []
        for hash_id in (row.hash_ids or ())[: math.ceil(row.input_length / BLOCK_TOKENS)]:
            words.extend(block(hash_id))
        del words[row.input_length:]
        shared += len(words)
        if len(words) < row.input_length:
            words.append(str(i))
            words.extend(words_of(rng, row.input_length - len(words)))
        prompts.append(Prompt(text=" ".join(words), tokens=row.input_length, max_tokens=row.output_length,
                              meta={INDEX_KEY: i, TIMESTAMP_KEY: row.timestamp_ms}))
    first, last = rows[0].timestamp_ms, rows[-1].timestamp_ms
    total = sum(r.input_length for r in rows)
    return prompts, {"prompt_tokens_source": "approximate", "dataset_path": str(path), "format": fmt,
                     "trace_requests": len(rows), "trace_span_s": round((last - first) / 1000.0, 6),
                     "speed": config.speed, "clipped_rows": clipped,
                     "prompt_tokens_mean": round(total / len(rows), 3),
                     "max_tokens_mean": round(sum(r.output_length for r in rows) / len(rows), 3),
                     "hash_block_share": round(shared / total, 6) if total else None}


def read_trace(path: Path, limit: int | None = None) -> tuple[list[_Row], str, int]:
    """The rows of a trace file (at most `limit`), its format ("mooncake" or "burstgpt") and how many lengths
    of 0 were raised to 1.

    Raises:
        DatasetError: the file is missing, unreadable, empty, or a row is malformed or out of time order
            (the message names the file and line).
    """
    if not path.is_file():
        raise DatasetError(f"dataset_path: no such file: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"dataset_path: cannot read {path}: {exc}") from None
    stripped = text.lstrip()
    if not stripped:
        raise DatasetError(f"dataset_path: {path} is empty (a trace needs Mooncake JSONL or BurstGPT CSV rows)")
    fmt = "mooncake" if stripped[0] == "{" else "burstgpt"
    rows: list[_Row] = []
    clipped = 0
    source = _mooncake_rows(path, text) if fmt == "mooncake" else _burstgpt_rows(path, text)
    for lineno, row, was_clipped in source:
        if rows and row.timestamp_ms < rows[-1].timestamp_ms:
            raise DatasetError(f"dataset_path: {path}:{lineno}: timestamp goes back in time "
                               f"({_num(row.timestamp_ms)} ms after {_num(rows[-1].timestamp_ms)} ms); "
                               "a trace must be in time order")
        rows.append(row)
        clipped += was_clipped
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise DatasetError(f"dataset_path: {path} holds no requests")
    return rows, fmt, clipped


def _num(value: float) -> str:
    return f"{value:g}"


def _mooncake_rows(path: Path, text: str) -> Any:
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"dataset_path: {path}:{lineno}"
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DatasetError(f"{where} is not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise DatasetError(f"{where} must be a JSON object with timestamp, input_length, output_length")
        timestamp: Any = obj.get("timestamp")
        if not _is_number(timestamp) or timestamp < 0:
            raise DatasetError(f"{where}: timestamp must be a number of ms >= 0, got {_show(timestamp)}")
        input_length = _length(where, "input_length", obj.get("input_length"), low=1)
        output_length = _length(where, "output_length", obj.get("output_length"), low=0)
        hash_ids = obj.get("hash_ids")
        if hash_ids is not None and not (isinstance(hash_ids, list) and all(
                isinstance(h, int) and not isinstance(h, bool) for h in hash_ids)):
            raise DatasetError(f"{where}: hash_ids must be a list of integers, got {_show(hash_ids)}")
        yield lineno, _Row(float(timestamp), input_length, max(1, output_length), hash_ids), output_length == 0


def _burstgpt_rows(path: Path, text: str) -> Any:
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    for row in reader:
        lineno = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip() for cell in row]
            missing = [c for c in BURSTGPT_COLUMNS if c not in header]
            if missing:
                raise DatasetError(f"dataset_path: {path}:{lineno}: not a Mooncake JSONL line nor a BurstGPT CSV "
                                   f"header (missing column {', '.join(repr(c) for c in missing)}; expected "
                                   "Timestamp, Model, Request tokens, Response tokens, Total tokens, Log Type)")
            at = [header.index(c) for c in BURSTGPT_COLUMNS]
            continue
        where = f"dataset_path: {path}:{lineno}"
        if len(row) < len(header):
            raise DatasetError(f"{where}: has {len(row)} columns, the header has {len(header)}")
        cells = [row[k].strip() for k in at]
        try:
            timestamp = float(cells[0])
        except ValueError:
            timestamp = math.nan
        if not math.isfinite(timestamp) or timestamp < 0:
            raise DatasetError(f"{where}: Timestamp must be a number of seconds >= 0, got {cells[0]!r}")
        lengths = []
        for name, cell in zip(BURSTGPT_COLUMNS[1:], cells[1:], strict=True):
            try:
                value = int(cell)
            except ValueError:
                value = -1
            if value < 0:
                raise DatasetError(f"{where}: {name} must be an integer >= 0, got {cell!r}")
            lengths.append(value)
        yield (lineno, _Row(timestamp * 1000.0, max(1, lengths[0]), max(1, lengths[1]), None),
               0 in lengths)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _length(where: str, name: str, value: Any, *, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise DatasetError(f"{where}: {name} must be an integer >= {low}, got {_show(value)}")
    return value


def _show(value: Any) -> str:
    return "nothing" if value is None else repr(value)[:40]
