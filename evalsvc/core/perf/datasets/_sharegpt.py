"""`sharegpt`: real conversations in ShareGPT's format, the workload of vLLM's and SGLang's serving benchmarks.

File format: a JSON list of rows, or JSONL (one row per line). A row is
    {"id": "...", "conversations": [{"from": "system" | "human" | "gpt", "value": "..."}, ...]}
(`user` / `assistant`, and `chatgpt` / `bard` / `bing` / `model` for the reply, are read too). A conversation
is its leading system turns, then human / gpt turns alternating; it ends at the first turn that breaks the
alternation. Rows in another shape, and conversations that do not open with a human turn, are skipped (and
counted); a file where nothing is usable is an error naming the file and why.

Where the file comes from, in order:
1. `dataset_path`: a local file, or a folder (every `*.json` / `*.jsonl` in it, in name order);
2. the cache: `<cache>/perf/ShareGPT/ShareGPT_V3_unfiltered_cleaned_split.json` (evalsvc's cache folder,
   see core/_paths.py);
3. the Hugging Face hub (`anon8231489123/ShareGPT_Vicuna_unfiltered`, the file vLLM's benchmark uses),
   downloaded once into the cache; `HF_ENDPOINT` names a mirror. With no copy and no hub a DatasetError
   names both ways out, before anything is sent.

Single-turn (the default): the prompt is the system message (if any) and the first human turn; the
dataset's reply to it is the conversation's output length. With `multi_turn`, every human turn is kept, in
order (`Prompt.turns`), and the session sends them with the history. Lengths are estimated as openqa's
(one token per CJK character, one per other word) or counted with `tokenizer_path`.

Filters (`min_prompt_tokens`, `max_prompt_tokens`, `min_output_tokens`, `max_output_tokens`) look at a
turn's human message (with the system message for the first) and the dataset's reply to it. Single-turn: a
conversation whose first turn falls outside is skipped. Multi-turn: a conversation is cut before its first
turn that falls outside (skipped if that is its first). `dataset_max_tokens` asks each request for as many
tokens as the dataset's reply has (at most `max_tokens`, at least `min_tokens`).
"""

from __future__ import annotations

import os
import random
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from ..._paths import cache_dir
from ...errors import DatasetError
from . import Prompt
from ._openqa import FetchFn, approx_tokens, fetch

HUB_REPO = "anon8231489123/ShareGPT_Vicuna_unfiltered"
FILE_NAME = "ShareGPT_V3_unfiltered_cleaned_split.json"
DEFAULT_ENDPOINT = "https://huggingface.co"
SUFFIXES = (".json", ".jsonl")

_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
          "bard": "assistant", "bing": "assistant", "model": "assistant", "system": "system"}


@dataclass(slots=True)
class Conversation:
    system: str | None
    turns: list[tuple[str, str | None]]
    """(human message, the dataset's reply to it or None), in order."""


def hub_url(endpoint: str | None = None) -> str:
    """The download URL of the ShareGPT file on the hub (Hugging Face's resolve API)."""
    base = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    return f"{base}/datasets/{HUB_REPO}/resolve/main/{quote(FILE_NAME)}"


def cache_path() -> Path:
    """Where the downloaded copy is kept."""
    return cache_dir() / "perf" / "ShareGPT" / FILE_NAME


def _looks_like_sharegpt(path: Path) -> None:
    """A cheap check of a download (the whole file is parsed when it is used): JSON that names conversations."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if head.lstrip()[:1] not in (b"[", b"{") or b'"conversations"' not in head:
        raise DatasetError(f"{path} does not start like ShareGPT JSON")


def locate(config: Any, fetch_fn: FetchFn | None = None) -> tuple[list[Path], str]:
    """The local files to read, downloading the hub's copy when needed.

    Returns:
        (paths, origin) with origin "dataset_path", "cache" or "downloaded".

    Raises:
        DatasetError: dataset_path does not exist or holds no JSON file, or the download failed.
    """
    if config.dataset_path:
        path = Path(config.dataset_path).expanduser()
        if path.is_dir():
            # files of the folder itself: a symlink leading out of it is not followed (the service confines
            # dataset_path to its data roots, and a folder must not widen that)
            inside = path.resolve()
            files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file()
                           and p.resolve().parent == inside)
            if not files:
                raise DatasetError(f"dataset_path: {path} holds no .json or .jsonl file")
            return files, "dataset_path"
        if not path.is_file():
            raise DatasetError(f"dataset_path: no such file or folder: {path}")
        return [path], "dataset_path"
    cached = cache_path()
    if cached.is_file():
        return [cached], "cache"
    url = hub_url()
    try:
        if fetch_fn is not None:
            fetch_fn(url, cached)
        else:
            fetch(url, cached, check=_looks_like_sharegpt)
    except DatasetError as exc:
        raise DatasetError(f"sharegpt: the hub answered something that is not {FILE_NAME} ({exc}); "
                           "download it yourself and pass dataset_path") from None
    except (OSError, urllib.error.URLError) as exc:
        why = getattr(exc, "reason", None) or exc
        raise DatasetError(
            f"sharegpt: cannot download {FILE_NAME} from {urlsplit(url).netloc} ({why}). Either connect to the "
            f"hub (HF_ENDPOINT may name a mirror), or get {HUB_REPO}/{FILE_NAME} (or any file in ShareGPT's "
            "JSON / JSONL format) onto this machine and pass dataset_path (--dataset-path) pointing at it") from None
    return [cached], "downloaded"


def read_rows(path: Path) -> list[Any]:
    """The rows of one file: a JSON list (or one object), or JSON lines.

    Raises:
        DatasetError: the file cannot be read, is empty, or is neither JSON nor JSON lines.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"dataset_path: cannot read {path}: {exc.strerror or exc}") from None
    head = raw.lstrip()[:1]
    if not head:
        raise DatasetError(f"dataset_path: {path} is empty")
    if head not in (b"[", b"{"):
        raise DatasetError(f"dataset_path: {path} is not ShareGPT JSON or JSONL (it starts with "
                           f"{raw.lstrip()[:20].decode('utf-8', 'replace')!r})")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if head == b"[":
            raise DatasetError(f"dataset_path: {path} is not valid JSON ({exc})") from None
        data = None  # JSON lines
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        return [data]
    rows: list[Any] = []
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise DatasetError(f"dataset_path: {path}:{lineno} is not a JSON line ({exc})") from None
    return rows


def conversation(row: Any) -> Conversation | str:
    """The conversation of one row, or why the row has none."""
    if not isinstance(row, dict) or not isinstance(row.get("conversations"), list):
        return "not an object with a 'conversations' list"
    messages = row["conversations"]
    roles: list[str] = []
    texts: list[str] = []
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("value"), str) or not isinstance(m.get("from"), str):
            return "a turn is not a {from, value} object of strings"
        role = _ROLES.get(m["from"].lower())
        if role is None:
            break
        roles.append(role)
        texts.append(m["value"])
    i = 0
    system: list[str] = []
    while i < len(roles) and roles[i] == "system":
        if texts[i].strip():
            system.append(texts[i])
        i += 1
    turns: list[tuple[str, str | None]] = []
    while i < len(roles) and roles[i] == "user" and texts[i].strip():
        reply = texts[i + 1] if i + 1 < len(roles) and roles[i + 1] == "assistant" else None
        turns.append((texts[i], reply))
        if reply is None:
            break
        i += 2
    if not turns:
        return "does not open with a human turn" if messages else "has no turns"
    return Conversation("\n".join(system) if system else None, turns)


class _Builder:
    """Turns conversations into prompts: lengths, filters, per-request max_tokens."""

    def __init__(self, config: Any, count_tokens: Callable[[str], int]) -> None:
        self.config = config
        self.count = count_tokens
        self.filtered = 0

    def _fits(self, low: int | None, high: int | None, n: int | None) -> bool:
        if low is None and high is None:
            return True
        if n is None:
            return False  # a length filter needs the dataset's reply
        return (low is None or n >= low) and (high is None or n <= high)

    def _max_tokens(self, reply_tokens: int | None) -> int | None:
        c = self.config
        if not c.dataset_max_tokens or reply_tokens is None:
            return None
        return int(max(c.min_tokens or 1, min(c.max_tokens, max(1, reply_tokens))))

    def turn(self, human: str, reply: str | None, system: str | None) -> Prompt | None:
        """One turn as a prompt (the system message goes with the first), or None when a filter refuses it."""
        c = self.config
        tokens = self.count(human) + (self.count(system) if system else 0)
        if not self._fits(c.min_prompt_tokens, c.max_prompt_tokens, tokens):
            return None
        reply_tokens = self.count(reply) if reply is not None else None
        if not self._fits(c.min_output_tokens, c.max_output_tokens, reply_tokens):
            return None
        if c.dataset_max_tokens and reply_tokens is None:
            return None  # no reply to take the length from
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": human}]
        return Prompt(messages=messages, tokens=tokens, max_tokens=self._max_tokens(reply_tokens))

    def prompt(self, conv: Conversation) -> Prompt | None:
        first = self.turn(*conv.turns[0], conv.system)
        if first is None:
            self.filtered += 1
            return None
        if self.config.multi_turn:
            later: list[Prompt] = []
            for human, reply in conv.turns[1:]:
                p = self.turn(human, reply, None)
                if p is None:
                    break
                later.append(p)
            first.turns = later
        return first


def load(config: Any, count: int, rng: random.Random,
         fetch_fn: FetchFn | None = None) -> tuple[list[Prompt], dict[str, Any]]:
    paths, origin = locate(config, fetch_fn)
    conversations: list[Conversation] = []
    rows = 0
    skipped: dict[str, int] = {}
    example: str | None = None
    for path in paths:
        file_rows = read_rows(path)
        rows += len(file_rows)
        for k, row in enumerate(file_rows, 1):
            conv = conversation(row)
            if isinstance(conv, str):
                skipped[conv] = skipped.get(conv, 0) + 1
                example = example or f"row {k} of {path.name}: {conv}"
            else:
                conversations.append(conv)
    where = str(paths[0]) if len(paths) == 1 else f"{paths[0].parent} ({len(paths)} files)"
    if not conversations:
        counted = f"{rows} row{'' if rows == 1 else 's'}"
        raise DatasetError(f"dataset_path: {where} holds no ShareGPT conversation ({counted}; "
                           f"{example or 'no rows'}); each row needs 'conversations': "
                           "[{\"from\": \"human\", \"value\": ...}, {\"from\": \"gpt\", \"value\": ...}]")
    counter = None
    if config.tokenizer_path:
        from ._tokenized import token_counter

        counter = token_counter(config.tokenizer_path)
    builder = _Builder(config, counter or approx_tokens)
    # shuffled with the seed, then walked until enough pass the filters: a sample of the usable ones,
    # without estimating the length of conversations that are never used
    order = list(range(len(conversations)))
    rng.shuffle(order)
    prompts: list[Prompt] = []
    for i in order:
        p = builder.prompt(conversations[i])
        if p is not None:
            prompts.append(p)
            if len(prompts) >= count:
                break
    if not prompts:
        raise DatasetError(f"dataset_path: {where}: no conversation passes the length filters "
                           f"({len(conversations)} conversations, {builder.filtered} filtered out by "
                           "min/max_prompt_tokens, min/max_output_tokens or dataset_max_tokens)")
    turns = [1 + len(p.turns or ()) for p in prompts]
    info: dict[str, Any] = {"prompt_tokens_source": "tokenizer" if counter else "approximate",
                            "dataset_path": where, "origin": origin, "rows": rows,
                            "conversations": len(conversations), "rows_skipped": dict(sorted(skipped.items())),
                            "multi_turn": bool(config.multi_turn)}
    if config.multi_turn:
        info["turns_mean"] = sum(turns) / len(turns)
        info["turns_max"] = max(turns)
    return prompts, info
