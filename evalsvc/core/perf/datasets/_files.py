"""Prompts from local files: `line_by_line` (one prompt per non-empty line) and `custom` (JSONL rows with
`prompt` or `messages`, optionally `max_tokens`)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson

from ...errors import DatasetError
from . import Prompt


def _approx(text: str) -> int:
    return max(1, len(text.split()))


def load(config: Any, count: int, rng: random.Random) -> tuple[list[Prompt], dict[str, Any]]:
    path = Path(config.dataset_path).expanduser()
    if not path.is_file():
        raise DatasetError(f"dataset_path: no such file: {path}")
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"dataset_path: cannot read {path}: {exc}") from None
    prompts: list[Prompt] = []
    for lineno, line in enumerate(raw.splitlines(), 1):
        if len(prompts) >= count:
            break
        if not line.strip():
            continue
        if config.dataset == "line_by_line":
            prompts.append(Prompt(text=line, tokens=_approx(line)))
            continue
        prompts.append(_custom_row(path, lineno, line))
    if not prompts:
        raise DatasetError(f"dataset_path: {path} holds no prompts")
    return prompts, {"prompt_tokens_source": "approximate", "dataset_path": str(path)}


def _custom_row(path: Path, lineno: int, line: str) -> Prompt:
    where = f"{path}:{lineno}"
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise DatasetError(f"dataset_path: {where} is not valid JSON ({exc})") from None
    if not isinstance(row, dict):
        raise DatasetError(f"dataset_path: {where} must be a JSON object with 'prompt' or 'messages'")
    max_tokens = row.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise DatasetError(f"dataset_path: {where}: max_tokens must be a positive integer")
    if isinstance(row.get("prompt"), str) and row["prompt"]:
        return Prompt(text=row["prompt"], tokens=_approx(row["prompt"]), max_tokens=max_tokens)
    messages = row.get("messages")
    if isinstance(messages, list) and messages and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m for m in messages
    ):
        text = " ".join(str(m["content"]) for m in messages)
        return Prompt(messages=messages, tokens=_approx(text), max_tokens=max_tokens)
    raise DatasetError(f"dataset_path: {where} needs a non-empty 'prompt' string or a 'messages' list "
                       "of {role, content} objects")
