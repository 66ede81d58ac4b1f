"""The sharegpt dataset: ShareGPT's JSON / JSONL format from a file or a folder, the hub download into the cache
and the offline error, length filters, the dataset's own output lengths, and bad files (one line naming the file).
Nothing here touches the network: the "hub" is a server on 127.0.0.1 or a closed port.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evalsvc import ConfigError, DatasetError, PerfConfig
from evalsvc.core.perf.datasets import _sharegpt, load_prompts

from tests._servers import QuietHandler, serve_http
from tests.core.test_perf_openqa import closed_port

URL = "http://127.0.0.1:9/v1/chat/completions"


def conv(cid: str, *turns: tuple[str, str]) -> dict[str, Any]:
    """A row in ShareGPT's format: (from, value) pairs."""
    return {"id": cid, "conversations": [{"from": who, "value": text} for who, text in turns]}


# Five rows as ShareGPT_V3 holds them: a plain exchange, one with a system turn and three exchanges, one that
# opens with the model (unusable), one with no turns, and one whose last human turn has no reply.
ROWS = [
    conv("a1", ("human", "What is the capital of France?"), ("gpt", "Paris is the capital of France.")),
    conv("b2", ("system", "Answer briefly."), ("human", "Name a prime"), ("gpt", "Seven"),
         ("human", "And an even one"), ("gpt", "Two is the only even prime number"),
         ("human", "Thanks"), ("gpt", "You are welcome")),
    conv("c3", ("gpt", "I speak first"), ("human", "odd")),
    conv("d4"),
    conv("e5", ("human", "Tell me a story about a dragon"), ("gpt", "Once upon a time"),
         ("human", "go on")),
]


def cfg(path: Path | None, tmp_path: Path, **kw: Any) -> PerfConfig:
    base: dict[str, Any] = dict(model="m", url=URL, dataset="sharegpt", work_dir=str(tmp_path / "out"))
    if path is not None:
        base["dataset_path"] = str(path)
    base.update(kw)
    return PerfConfig(**base)


def write_json(path: Path, rows: list[Any]) -> Path:
    path.write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "\n", encoding="utf-8")
    return path


def by_first_user(prompts: list[Any]) -> dict[str, Any]:
    return {p.messages[-1]["content"]: p for p in prompts}


@pytest.mark.parametrize("form", ["json", "jsonl"])
def test_single_turn_prompts_from_a_file_in_the_real_format(tmp_path: Path, form: str) -> None:
    path = (write_json if form == "json" else write_jsonl)(tmp_path / f"sg.{form}", ROWS)
    prompts, info = load_prompts(cfg(path, tmp_path), 100)
    assert info["rows"] == 5 and info["conversations"] == 3 and info["unique_prompts"] == 3
    assert info["rows_skipped"] == {"does not open with a human turn": 1, "has no turns": 1}
    assert info["dataset"] == "sharegpt" and info["origin"] == "dataset_path"
    got = by_first_user(prompts)
    assert got["Name a prime"].messages == [{"role": "system", "content": "Answer briefly."},
                                            {"role": "user", "content": "Name a prime"}]
    assert got["What is the capital of France?"].messages == [
        {"role": "user", "content": "What is the capital of France?"}]
    assert got["What is the capital of France?"].tokens == 6  # words, as the rest of perf estimates
    assert got["Name a prime"].tokens == 2 + 3  # the system message counts with the first turn
    assert all(p.turns is None and p.max_tokens is None for p in prompts)


def test_a_folder_reads_every_json_and_jsonl_file(tmp_path: Path) -> None:
    folder = tmp_path / "sharegpt"
    folder.mkdir()
    write_json(folder / "part1.json", ROWS[:2])
    write_jsonl(folder / "part2.jsonl", ROWS[2:])
    (folder / "notes.txt").write_text("not a dataset")
    prompts, info = load_prompts(cfg(folder, tmp_path), 100)
    assert info["rows"] == 5 and len(prompts) == 3 and "2 files" in info["dataset_path"]


def test_multi_turn_keeps_every_human_turn_in_order(tmp_path: Path) -> None:
    path = write_json(tmp_path / "sg.json", ROWS)
    prompts, info = load_prompts(cfg(path, tmp_path, multi_turn=True), 100)
    got = by_first_user(prompts)
    assert [t.messages for t in got["Name a prime"].turns] == [[{"role": "user", "content": "And an even one"}],
                                                               [{"role": "user", "content": "Thanks"}]]
    assert [t.messages[0]["content"] for t in got["Tell me a story about a dragon"].turns] == ["go on"]
    assert got["What is the capital of France?"].turns == []
    assert info["turns_max"] == 3 and info["turns_mean"] == pytest.approx(2.0)


def test_length_filters_and_the_datasets_own_output_lengths(tmp_path: Path) -> None:
    path = write_json(tmp_path / "sg.json", ROWS)
    # prompt of 5 to 6 words: the France question (6) and the prime one with its system message (5)
    prompts, _ = load_prompts(cfg(path, tmp_path, min_prompt_tokens=5, max_prompt_tokens=6), 100)
    assert set(by_first_user(prompts)) == {"What is the capital of France?", "Name a prime"}
    # reply of at least 4 words: Paris (6 words) and the dragon's (4)
    prompts, _ = load_prompts(cfg(path, tmp_path, min_output_tokens=4), 100)
    assert set(by_first_user(prompts)) == {"What is the capital of France?", "Tell me a story about a dragon"}
    prompts, _ = load_prompts(cfg(path, tmp_path, max_output_tokens=1), 100)
    assert set(by_first_user(prompts)) == {"Name a prime"}
    # max_tokens from the dataset's reply, capped by max_tokens and raised to min_tokens
    prompts, _ = load_prompts(cfg(path, tmp_path, dataset_max_tokens=True, max_tokens=4, min_tokens=2), 100)
    assert {k: p.max_tokens for k, p in by_first_user(prompts).items()} == {
        "What is the capital of France?": 4, "Name a prime": 2, "Tell me a story about a dragon": 4}


def test_multi_turn_cuts_a_conversation_at_its_first_turn_outside_the_filters(tmp_path: Path) -> None:
    path = write_json(tmp_path / "sg.json", ROWS)
    prompts, _ = load_prompts(cfg(path, tmp_path, multi_turn=True, max_output_tokens=4, dataset_max_tokens=True), 100)
    got = by_first_user(prompts)
    # "Two is the only even prime number" (7 words) is over the limit: the session ends after turn 1
    assert got["Name a prime"].turns == [] and got["Name a prime"].max_tokens == 1
    assert "What is the capital of France?" not in got  # its first reply is too long: skipped
    assert got["Tell me a story about a dragon"].turns == []  # "go on" has no reply to take a length from


def test_sampling_is_seeded(tmp_path: Path) -> None:
    rows = [conv(str(i), ("human", f"question {i}"), ("gpt", "answer")) for i in range(50)]
    path = write_jsonl(tmp_path / "sg.jsonl", rows)
    one, _ = load_prompts(cfg(path, tmp_path, seed=1), 10)
    again, _ = load_prompts(cfg(path, tmp_path, seed=1), 10)
    other, _ = load_prompts(cfg(path, tmp_path, seed=2), 10)
    texts = [[p.messages[0]["content"] for p in ps] for ps in (one, again, other)]
    assert texts[0] == texts[1] != texts[2] and len(set(texts[0])) == 10


BAD_FILES = [
    ("plain.json", "just some text\n", "is not ShareGPT JSON or JSONL"),
    ("broken.json", '[{"id": "1", "conversations": [', "is not valid JSON"),
    ("empty.json", "  \n", "is empty"),
    ("wrong.jsonl", '{"prompt": "hello"}\n{"prompt": "again"}\n', "holds no ShareGPT conversation (2 rows; "
                                                                    "row 1 of wrong.jsonl: not an object with a "
                                                                    "'conversations' list)"),
    ("badline.jsonl", '{"id": "1", "conversations": []}\nnot json\n', "badline.jsonl:2 is not a JSON line"),
    ("turns.json", '[{"id": "1", "conversations": [{"from": "human", "text": "hi"}]}]',
     "a turn is not a {from, value} object of strings"),
    ("gptonly.json", json.dumps([conv("1", ("gpt", "hello"))]), "does not open with a human turn"),
]


@pytest.mark.parametrize(("name", "content", "needle"), BAD_FILES)
def test_bad_files_get_one_line_naming_the_file_and_the_problem(tmp_path: Path, name: str, content: str,
                                                                needle: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError) as err:
        load_prompts(cfg(path, tmp_path), 10)
    message = str(err.value)
    assert name in message and needle in message and "\n" not in message, message


def test_no_conversation_left_after_the_filters_is_an_error(tmp_path: Path) -> None:
    path = write_json(tmp_path / "sg.json", ROWS)
    with pytest.raises(DatasetError, match=r"sg.json: no conversation passes the length filters \(3 conversations, "
                                           r"3 filtered out"):
        load_prompts(cfg(path, tmp_path, min_prompt_tokens=100), 10)


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file or folder"):
        load_prompts(cfg(tmp_path / "nope.json", tmp_path), 10)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"empty holds no .json or .jsonl file"):
        load_prompts(cfg(tmp_path / "empty", tmp_path), 10)


@pytest.mark.parametrize(("args", "needle"), [
    (["--dataset", "sharegpt", "--dataset-path", "{bad}"], "DatasetError: dataset_path: {bad} is not ShareGPT JSON"),
    (["--dataset", "random", "--multi-turn"], "ConfigError: multi_turn: needs a conversation dataset (sharegpt); "
                                              "dataset 'random' has single prompts"),
    (["--dataset", "sharegpt", "--think-time", "1"], "ConfigError: think_time: applies between the turns of a "
                                                     "session: it needs multi_turn"),
    (["--dataset", "sharegpt", "--min-prompt-tokens", "9", "--max-prompt-tokens", "3"],
     "ConfigError: min_prompt_tokens: must be <= max_prompt_tokens (3), got 9"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("hello\n")
    args = [a.replace("{bad}", str(bad)) for a in args]
    needle = needle.replace("{bad}", str(bad))
    result = subprocess.run([sys.executable, "-m", "evalsvc", "perf", "--model", "m", "--url", URL, *args],
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr


def test_config_rules() -> None:
    with pytest.raises(ConfigError, match="multi_turn: needs a conversation dataset"):
        PerfConfig(model="m", url=URL, multi_turn=True)  # the default dataset, openqa, has single prompts
    with pytest.raises(ConfigError, match="min_output_tokens: must be <= max_output_tokens"):
        PerfConfig(model="m", url=URL, dataset="sharegpt", min_output_tokens=5, max_output_tokens=4)
    ok = PerfConfig(model="m", url=URL, dataset="sharegpt", multi_turn=True, think_time=0.5)
    assert ok.to_dict()["think_time"] == 0.5


# -- the hub ------------------------------------------------------------------------------------------------

@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty cache, and a hub at a closed port on 127.0.0.1."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("EVALSVC_CACHE_DIR", str(cache))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    return cache


def test_offline_without_a_copy_is_one_line_naming_dataset_path(tmp_path: Path, offline: Path) -> None:
    with pytest.raises(DatasetError) as err:
        load_prompts(cfg(None, tmp_path), 10)
    message = str(err.value)
    assert message.startswith(f"sharegpt: cannot download {_sharegpt.FILE_NAME} from 127.0.0.1:")
    assert "HF_ENDPOINT" in message and "pass dataset_path (--dataset-path)" in message and "\n" not in message


def test_downloaded_once_into_the_cache_then_read_from_it(tmp_path: Path, offline: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    body = json.dumps(ROWS).encode()
    seen: list[str] = []

    class Hub(QuietHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.answer(body)

    with serve_http(Hub) as endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        prompts, info = load_prompts(cfg(None, tmp_path), 10)
    assert seen == [f"/datasets/{_sharegpt.HUB_REPO}/resolve/main/{_sharegpt.FILE_NAME}"]
    assert info["origin"] == "downloaded" and len(prompts) == 3
    assert (offline / "perf" / "ShareGPT" / _sharegpt.FILE_NAME).read_bytes() == body
    again, info = load_prompts(cfg(None, tmp_path), 10)  # the hub is gone now: the cache answers
    assert info["origin"] == "cache" and len(again) == 3


def test_a_hub_error_page_is_not_cached(tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Hub(QuietHandler):
        def do_GET(self) -> None:
            self.answer(b"<html>rate limited</html>", content_type="text/html")

    with serve_http(Hub) as endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        with pytest.raises(DatasetError, match="the hub answered something that is not"):
            load_prompts(cfg(None, tmp_path), 10)
    assert not (offline / "perf" / "ShareGPT" / _sharegpt.FILE_NAME).exists()


def test_the_seeded_rng_is_the_only_randomness(tmp_path: Path) -> None:
    path = write_json(tmp_path / "sg.json", ROWS)
    a, _ = _sharegpt.load(cfg(path, tmp_path), 2, random.Random(7))
    b, _ = _sharegpt.load(cfg(path, tmp_path), 2, random.Random(7))
    assert [p.messages for p in a] == [p.messages for p in b]


def test_a_folder_does_not_follow_symlinks_out_of_it(tmp_path: Path) -> None:
    outside = write_json(tmp_path / "outside.json", ROWS)
    folder = tmp_path / "data"
    folder.mkdir()
    write_jsonl(folder / "own.jsonl", ROWS[:1])
    (folder / "link.json").symlink_to(outside)
    prompts, info = load_prompts(cfg(folder, tmp_path), 100)
    assert info["rows"] == 1 and len(prompts) == 1
