"""`openqa`: open-ended questions from HC3-Chinese's open_qa split, the default prompts of evalscope perf.

Where the file comes from, in order:
1. `dataset_path`: a local `open_qa.jsonl`, or a directory holding one (the hub's layout);
2. the cache: `<cache>/perf/HC3-Chinese/open_qa.jsonl`, `<cache>` being evalsvc's cache folder
   (`EVALSVC_CACHE_DIR`, else `$XDG_CACHE_HOME/evalsvc`, else `~/.cache/evalsvc`);
3. the dataset hub evalscope uses, ModelScope dataset `AI-ModelScope/HC3-Chinese`, downloaded once into
   the cache. `MODELSCOPE_ENDPOINT` points at a mirror (default https://www.modelscope.cn).
With no copy and no hub a `DatasetError` names both ways out, before anything is sent.

Rows are JSON objects; the prompt is `question` (stripped). Prompts are sampled with the run's seed.
"""

from __future__ import annotations

import os
import random
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from ..._io import create_beside
from ..._net import proxy_for
from ..._paths import cache_dir
from ...errors import DatasetError
from . import Prompt

DATASET_ID = "AI-ModelScope/HC3-Chinese"
FILE_NAME = "open_qa.jsonl"
REVISION = "master"
DEFAULT_ENDPOINT = "https://www.modelscope.cn"
DOWNLOAD_TIMEOUT_S = 30.0

FetchFn = Callable[[str, Path], None]

_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


def hub_url(endpoint: str | None = None) -> str:
    """The download URL of open_qa.jsonl on the hub (ModelScope's file API)."""
    base = (endpoint or os.environ.get("MODELSCOPE_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    return f"{base}/api/v1/datasets/{DATASET_ID}/repo?Revision={REVISION}&FilePath={quote(FILE_NAME)}"


def cache_path() -> Path:
    """Where the downloaded copy is kept."""
    return cache_dir() / "perf" / "HC3-Chinese" / FILE_NAME


def fetch(url: str, dest: Path, check: Callable[[Path], object] | None = None) -> None:
    """Download `url` to `dest` (atomically), through the proxy evalsvc's rule gives for it.

    `check(path)` reads the downloaded file before it is put in place and raises DatasetError when it is not
    the dataset (an HTML error page); by default, that it holds an open_qa question.

    Raises:
        OSError / urllib.error.URLError: the hub cannot be reached or answered an error.
        DatasetError: `check` refused what was downloaded.
    """
    proxy = proxy_for(url)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler(
        {urlsplit(url).scheme: proxy} if proxy else {}))
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_beside(dest, 0o666)
    try:
        with os.fdopen(fd, "wb") as out, opener.open(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
        (check or (lambda p: _questions(p, limit=1)))(Path(tmp))  # an HTML error page is not a dataset
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def locate(config: Any, fetch_fn: FetchFn | None = None) -> tuple[Path, str]:
    """The local open_qa.jsonl to read, downloading it when needed.

    Returns:
        (path, origin) with origin "dataset_path", "cache" or "downloaded".

    Raises:
        DatasetError: dataset_path does not exist / holds no open_qa.jsonl, or the download failed.
    """
    if config.dataset_path:
        path = Path(config.dataset_path).expanduser()
        if path.is_dir():
            path = path / FILE_NAME
        if not path.is_file():
            raise DatasetError(f"dataset_path: no {FILE_NAME} at {path} (give the file, or the folder holding it)")
        return path, "dataset_path"
    cached = cache_path()
    if cached.is_file():
        return cached, "cache"
    url = hub_url()
    try:
        (fetch_fn or fetch)(url, cached)
    except DatasetError as exc:
        raise DatasetError(f"openqa: the hub answered something that is not {FILE_NAME} ({exc}); "
                           f"download it yourself and pass dataset_path") from None
    except (OSError, urllib.error.URLError) as exc:
        why = getattr(exc, "reason", None) or exc
        raise DatasetError(
            f"openqa: cannot download {FILE_NAME} from {urlsplit(url).netloc} ({why}). Either connect to the "
            f"hub (MODELSCOPE_ENDPOINT may name a mirror), or get {DATASET_ID}/{FILE_NAME} onto this machine "
            f"and pass dataset_path (--dataset-path) pointing at it") from None
    return cached, "downloaded"


def _questions(path: Path, limit: int | None = None) -> list[str]:
    out: list[str] = []
    try:
        with open(path, "rb") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise DatasetError(f"{path}:{lineno} is not a JSON line of {FILE_NAME}") from None
                question = row.get("question") if isinstance(row, dict) else None
                if isinstance(question, str) and question.strip():
                    out.append(question.strip())
                    if limit is not None and len(out) >= limit:
                        break
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not out:
        raise DatasetError(f"{path} holds no rows with a 'question'")
    return out


def approx_tokens(text: str) -> int:
    """Rough token count: one per CJK character, one per other word (current tokenizers do about that)."""
    cjk = len(_CJK.findall(text))
    rest = _CJK.sub(" ", text)
    return max(1, cjk + len(rest.split()))


def load(config: Any, count: int, rng: random.Random,
         fetch_fn: FetchFn | None = None) -> tuple[list[Prompt], dict[str, Any]]:
    path, origin = locate(config, fetch_fn)
    questions = _questions(path)
    picked = rng.sample(questions, count) if count < len(questions) else rng.sample(questions, len(questions))
    counter = None
    if config.tokenizer_path:
        from ._tokenized import token_counter

        counter = token_counter(config.tokenizer_path)
    prompts = [Prompt(text=q, tokens=counter(q) if counter else approx_tokens(q)) for q in picked]
    return prompts, {"prompt_tokens_source": "tokenizer" if counter else "approximate",
                     "dataset_path": str(path), "origin": origin, "rows": len(questions)}
