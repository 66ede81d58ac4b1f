"""The openqa dataset (local copy, download into the cache, the offline error) and exact-length prompts
with a local tokenizer. Nothing here touches the network: the "hub" is a server on 127.0.0.1 or a closed port.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from evalsvc import DatasetError, PerfConfig, run_perf
from evalsvc.core.perf.datasets import _openqa, load_prompts

from tests._servers import QuietHandler, serve_http

QUESTIONS = [f"问题{i}：为什么天空是蓝色的？请解释 reason {i}" for i in range(30)]


def write_copy(folder: Path, questions: list[str] = QUESTIONS) -> Path:
    """open_qa.jsonl in the hub's format (HC3: id, question, human_answers, chatgpt_answers)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "open_qa.jsonl"
    rows = [{"id": str(i), "question": q + "  ", "human_answers": ["..."], "chatgpt_answers": ["..."]}
            for i, q in enumerate(questions)]
    rows.insert(3, {"id": "x", "question": "", "human_answers": []})  # no question: skipped
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "\n", encoding="utf-8")
    return path


def cfg(tmp_path: Path, **kw: Any) -> PerfConfig:
    base: dict[str, Any] = dict(model="m", url="http://127.0.0.1:9/v1/chat/completions", dataset="openqa",
                                work_dir=str(tmp_path / "out"))
    base.update(kw)
    return PerfConfig(**base)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty cache, and a hub at a closed port on 127.0.0.1."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("EVALSVC_CACHE_DIR", str(cache))
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    return cache


@contextmanager
def hub(body: bytes) -> Iterator[tuple[str, list[str]]]:
    """A stand-in for the dataset hub on 127.0.0.1; yields (endpoint, request paths seen)."""
    seen: list[str] = []

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.answer(body)

    with serve_http(Handler) as url:
        yield url, seen


# -- local copy ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("as_dir", [False, True])
def test_local_copy_file_or_folder(tmp_path: Path, offline: Path, as_dir: bool) -> None:
    path = write_copy(tmp_path / "hc3")
    prompts, info = load_prompts(cfg(tmp_path, dataset_path=str(path.parent if as_dir else path)), 10)
    assert len(prompts) == 10
    assert {p.text for p in prompts} <= set(QUESTIONS)  # stripped questions, the empty row skipped
    assert len({p.text for p in prompts}) == 10
    assert info["origin"] == "dataset_path" and info["rows"] == 30 and info["prompt_tokens_source"] == "approximate"
    # one token per CJK character (and full-width punctuation), one per other word
    q = QUESTIONS[0]
    assert _openqa.approx_tokens(q) == 14 + 2 + 3  # 14 characters, ：and ？, "0 reason 0"
    assert not offline.exists()  # a local copy never touches the cache


def test_sampling_follows_the_seed_and_caps_at_the_file(tmp_path: Path, offline: Path) -> None:
    path = str(write_copy(tmp_path / "hc3"))
    first = [p.text for p in load_prompts(cfg(tmp_path, dataset_path=path, seed=1), 10)[0]]
    again = [p.text for p in load_prompts(cfg(tmp_path, dataset_path=path, seed=1), 10)[0]]
    other = [p.text for p in load_prompts(cfg(tmp_path, dataset_path=path, seed=2), 10)[0]]
    assert first == again and first != other
    everything, _ = load_prompts(cfg(tmp_path, dataset_path=path), 1000)
    assert sorted(p.text for p in everything) == sorted(QUESTIONS)  # the engine cycles through them


@pytest.mark.parametrize("content,message", [
    (None, "no open_qa.jsonl at"),
    ("not json\n", "is not a JSON line"),
    ('{"id": 1}\n', "holds no rows with a 'question'"),
])
def test_bad_local_copy_is_a_dataset_error(tmp_path: Path, offline: Path, content: str | None,
                                           message: str) -> None:
    path = tmp_path / "copy" / "open_qa.jsonl"
    if content is not None:
        path.parent.mkdir()
        path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_prompts(cfg(tmp_path, dataset_path=str(path)), 5)


def test_run_from_a_local_copy(mock_server: Any, tmp_path: Path, offline: Path) -> None:
    path = write_copy(tmp_path / "hc3")
    result = run_perf(cfg(tmp_path, url=mock_server.chat_url, dataset_path=str(path), number=8, parallel=2))
    (run,) = result.results.values()
    assert run.metrics["requests_succeeded"] == 8
    assert result.info["dataset"]["dataset"] == "openqa" and result.info["dataset"]["dataset_path"] == str(path)


# -- download and cache -------------------------------------------------------------------------------------

def test_downloads_once_from_the_hub_into_the_cache(tmp_path: Path, offline: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    body = write_copy(tmp_path / "src").read_bytes()
    with hub(body) as (endpoint, seen):
        monkeypatch.setenv("MODELSCOPE_ENDPOINT", endpoint)
        prompts, info = load_prompts(cfg(tmp_path), 5)
        assert info["origin"] == "downloaded" and len(prompts) == 5
        again, info2 = load_prompts(cfg(tmp_path), 5)
    assert seen == ["/api/v1/datasets/AI-ModelScope/HC3-Chinese/repo?Revision=master&FilePath=open_qa.jsonl"]
    assert info2["origin"] == "cache" and [p.text for p in again] == [p.text for p in prompts]
    cached = offline / "perf" / "HC3-Chinese" / "open_qa.jsonl"
    assert cached.read_bytes() == body and info2["dataset_path"] == str(cached)
    assert [p.name for p in cached.parent.iterdir()] == ["open_qa.jsonl"]  # no temporary left behind


def test_a_hub_answer_that_is_not_the_dataset_is_not_cached(tmp_path: Path, offline: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with hub(b"<html>sign in</html>") as (endpoint, _):
        monkeypatch.setenv("MODELSCOPE_ENDPOINT", endpoint)
        with pytest.raises(DatasetError, match=r"not open_qa\.jsonl"):
            load_prompts(cfg(tmp_path), 5)
    assert not any(p.is_file() for p in offline.rglob("*"))


def test_fetch_function_can_be_injected(tmp_path: Path, offline: Path) -> None:
    src = write_copy(tmp_path / "src")
    calls: list[str] = []

    def fake_fetch(url: str, dest: Path) -> None:
        calls.append(url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(src.read_bytes())

    prompts, info = _openqa.load(cfg(tmp_path), 4, random.Random(0), fetch_fn=fake_fetch)
    assert len(prompts) == 4 and info["origin"] == "downloaded" and calls == [_openqa.hub_url()]


# -- offline, no copy ---------------------------------------------------------------------------------------

def test_offline_without_a_copy_names_both_ways_out(tmp_path: Path, offline: Path) -> None:
    with pytest.raises(DatasetError) as err:
        load_prompts(cfg(tmp_path), 5)
    message = str(err.value)
    assert "\n" not in message
    assert "cannot download open_qa.jsonl" in message
    assert "dataset_path" in message and "MODELSCOPE_ENDPOINT" in message


def test_offline_run_fails_before_anything_is_sent(mock_server: Any, tmp_path: Path, offline: Path) -> None:
    before = mock_server.stats()["requests"]
    with pytest.raises(DatasetError):
        run_perf(cfg(tmp_path, url=mock_server.chat_url, number=5))
    assert mock_server.stats()["requests"] == before
    assert not (tmp_path / "out").exists()  # no run directory for a run that never started


def test_offline_cli_prints_one_line_and_exits_2(tmp_path: Path, offline: Path) -> None:
    import os

    proc = subprocess.run([sys.executable, "-m", "evalsvc", "perf", "--model", "m", "--url",
                           "http://127.0.0.1:9/v1/chat/completions", "--work-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60, env={**os.environ})
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("DatasetError: openqa: cannot download"), proc.stderr
    assert "--dataset-path" in lines[0]


# -- tokenizer: exact lengths ---------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 37, 300])
def test_random_prompts_have_exact_lengths_with_a_tokenizer(tmp_path: Path, tokenizer_dir: str, n: int) -> None:
    from transformers import AutoTokenizer

    prompts, info = load_prompts(cfg(tmp_path, dataset="random", prompt_tokens=n, tokenizer_path=tokenizer_dir), 20)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    assert [len(tok.encode(p.text, add_special_tokens=False)) for p in prompts] == [n] * 20
    assert all(p.tokens == n for p in prompts)
    if n > 1:  # distinct openings (one token cannot hold twenty different indices)
        assert len({p.text for p in prompts}) == 20
    assert info["prompt_tokens_source"] == "tokenizer"


def test_random_prompts_without_a_tokenizer_say_approximate(tmp_path: Path) -> None:
    _, info = load_prompts(cfg(tmp_path, dataset="random", prompt_tokens=16), 3)
    assert info["prompt_tokens_source"] == "approximate"


def test_openqa_counts_tokens_with_the_tokenizer(tmp_path: Path, tokenizer_dir: str, offline: Path) -> None:
    from transformers import AutoTokenizer

    path = write_copy(tmp_path / "hc3")
    prompts, info = load_prompts(cfg(tmp_path, dataset_path=str(path), tokenizer_path=tokenizer_dir), 5)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    assert [p.tokens for p in prompts] == [len(tok.encode(p.text, add_special_tokens=False)) for p in prompts]
    assert info["prompt_tokens_source"] == "tokenizer"


def test_bad_tokenizer_path_is_a_dataset_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for path, message in ((tmp_path / "nope", "no such directory"), (tmp_path / "empty", "cannot load a tokenizer")):
        with pytest.raises(DatasetError, match=message):
            load_prompts(cfg(tmp_path, dataset="random", prompt_tokens=8, tokenizer_path=str(path)), 2)
