"""Multi-turn sessions (`multi_turn`) against the simulated endpoint: turns in order, each carrying the history
with the model's real answers; `number` counts requests, `parallel` sessions; sessions stay whole within a
client process; think time; a failed turn ends its session; per-turn and per-session figures in the summary.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from evalsvc import PerfConfig, run_perf
from evalsvc.core.perf._sender import Sender, TurnOutcome
from evalsvc.core.perf.datasets import Prompt
from evalsvc.core.perf.dialects import get_dialect
from tests._perfrun import only, records
from tests._servers import MockHandle, start_mock
from tests.core.test_perf_dialects import APIS, url_for

REPLIES = [{"match": f"question {k}", "reply": f"Answer {k} is here."} for k in range(1, 4)]


def conversation(cid: int, turns: int = 3) -> dict[str, Any]:
    rows = [{"from": "system", "value": "Be brief."}]
    for k in range(1, turns + 1):
        rows += [{"from": "human", "value": f"conversation {cid} question {k}"},
                 {"from": "gpt", "value": f"the dataset's own reply {k}"}]
    return {"id": str(cid), "conversations": rows}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockHandle]:
    with start_mock(ttft_ms=2, itl_ms=1, output_tokens=6, answers=REPLIES) as server:
        yield server


@pytest.fixture
def sharegpt(tmp_path: Path) -> Path:
    path = tmp_path / "sharegpt.json"
    path.write_text(json.dumps([conversation(i) for i in range(8)]), encoding="utf-8")
    return path


def cfg(url: str, path: Path, tmp_path: Path, **kw: Any) -> PerfConfig:
    base: dict[str, Any] = dict(model="mock-model", url=url, dataset="sharegpt", dataset_path=str(path),
                                multi_turn=True, max_tokens=32, number=12, parallel=2, work_dir=str(tmp_path / "out"),
                                preflight=False)
    base.update(kw)
    return PerfConfig(**base)


def by_session(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        out[row["session"]].append(row)
    return {s: sorted(turns, key=lambda r: r["turn"]) for s, turns in out.items()}


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("api", APIS)
def test_the_answer_a_turn_keeps_is_the_models_text(mock: MockHandle, tmp_path: Path, api: str,
                                                    stream: bool) -> None:
    """What the sender keeps for the next turn is the text the endpoint sent, in each dialect."""
    config = PerfConfig(model="gem-test", url=url_for(mock, api), api=api, dataset="sharegpt", stream=stream,
                        work_dir=str(tmp_path), max_tokens=32)
    dialect = get_dialect(api)

    async def one() -> TurnOutcome:
        body = dialect.build(config, Prompt(messages=[{"role": "user", "content": "conversation 1 question 2"}]))
        sender = Sender(dialect, config, [body], [4])
        try:
            turn = TurnOutcome(0, None, session=0, turn=1)
            await sender.send(0, None, turn, sender.encode(body))
            return turn
        finally:
            sender.close()

    turn = asyncio.run(one())
    assert turn.kind is None, turn.detail
    assert turn.text == "Answer 2 is here."


def test_turns_go_in_order_and_number_counts_requests(mock: MockHandle, sharegpt: Path, tmp_path: Path) -> None:
    result = run_perf(cfg(mock.chat_url, sharegpt, tmp_path, number=10, parallel=2))
    run = only(result)
    m = run["metrics"]
    assert result.status == "completed"
    assert m["requests_total"] == m["requests_succeeded"] == 10
    # 2 sessions at a time, 3 turns each, 10 requests: whichever way they interleave, 4 sessions start, at
    # least 2 run whole, and the ones running when the requests run out are cut short
    sessions = by_session(records(result))
    assert sorted(sessions) == [0, 1, 2, 3]
    whole = [s for s, turns in sessions.items() if len(turns) == 3]
    assert len(whole) >= 2
    assert (m["sessions_started"], m["sessions_completed"], m["sessions_cut"], m["sessions_failed"]) == (
        4, len(whole), 4 - len(whole), 0)
    assert m["multi_turn"] is True and m["think_time"] == 0.0
    per_turn = [sum(1 for turns in sessions.values() if len(turns) >= t) for t in (1, 2, 3)]
    assert [m["by_turn"][str(t)]["requests"] for t in (1, 2, 3)] == per_turn
    assert m["by_turn"]["3"]["succeeded"] == per_turn[2] and m["by_turn"]["3"]["ttft_ms_mean"] > 0
    assert m["session_turns_mean"] == 3.0 and m["session_latency_ms_mean"] > m["latency_ms_mean"]
    for name in ("ttft_ms_turn1", "ttft_ms_turn2plus", "latency_ms_turn1", "latency_ms_turn2plus",
                 "session_latency_ms", "session_turns"):
        assert run["percentiles"][name]["count"] > 0, name
    assert run["percentiles"]["ttft_ms_turn1"]["count"] == 4
    assert run["percentiles"]["ttft_ms_turn2plus"]["count"] == 6
    for turns in sessions.values():
        assert [r["turn"] for r in turns] == list(range(1, len(turns) + 1))
        for before, after in pairwise(turns):
            assert after["sent_ms"] >= before["end_ms"]  # the next turn waits for the answer
            assert after["prompt_tokens"] > before["prompt_tokens"]  # and carries a longer history
    report = (Path(result.output_dir) / "report.txt").read_text()
    assert "sessions completed / started" in report and "TTFT mean turn 1 / turns 2+" in report


def test_sessions_stay_whole_within_one_client_process(mock: MockHandle, sharegpt: Path, tmp_path: Path) -> None:
    result = run_perf(cfg(mock.chat_url, sharegpt, tmp_path, number=18, parallel=2, workers=2))
    m = only(result)["metrics"]
    assert m["requests_total"] == m["requests_succeeded"] == 18
    assert m["sessions_completed"] == 6 and m["sessions_cut"] == 0
    for session, turns in by_session(records(result)).items():
        # one session at a time in each of 2 client processes: 3 whole sessions each. Client process k sends
        # the requests with index = k mod 2, and runs the sessions with id = k mod 2
        assert {r["index"] % 2 for r in turns} == {session % 2}, turns
        assert len(turns) == 3


def test_think_time_separates_a_sessions_turns(mock: MockHandle, sharegpt: Path, tmp_path: Path) -> None:
    result = run_perf(cfg(mock.chat_url, sharegpt, tmp_path, number=6, parallel=2, think_time=0.2))
    assert only(result)["metrics"]["think_time"] == 0.2
    for turns in by_session(records(result)).values():
        for before, after in pairwise(turns):
            assert after["sent_ms"] - before["end_ms"] >= 199.0  # a sleep never ends early (1 ms: clock rounding)


def test_open_loop_starts_sessions_on_the_schedule(mock: MockHandle, sharegpt: Path, tmp_path: Path) -> None:
    result = run_perf(cfg(mock.chat_url, sharegpt, tmp_path, number=9, parallel=8, rate=20, arrival="constant"))
    m = only(result)["metrics"]
    assert m["requests_total"] == m["requests_succeeded"] == 9 and m["sessions_started"] >= 3
    rows = records(result)
    firsts = sorted(r["scheduled_ms"] for r in rows if r["turn"] == 1)
    assert len(firsts) == m["sessions_started"]
    assert firsts == pytest.approx([50.0 * k for k in range(len(firsts))], abs=1e-6)  # one every 1/rate s
    assert all(r["scheduled_ms"] is None for r in rows if r["turn"] > 1)  # later turns follow their session


def test_a_failed_turn_ends_its_session(sharegpt: Path, tmp_path: Path) -> None:
    with start_mock(ttft_ms=0, itl_ms=0, output_tokens=4, error_500=0.25, fault_cycle=4) as faulty:
        result = run_perf(cfg(faulty.chat_url, sharegpt, tmp_path, number=16, parallel=1))
    m = only(result)["metrics"]
    assert m["requests_failed"] == m["failures_by_kind"]["http_500"] > 0
    sessions = by_session(records(result))
    failed = [turns for turns in sessions.values() if not turns[-1]["ok"]]
    assert m["sessions_failed"] == len(failed) > 0
    for turns in sessions.values():
        assert all(r["ok"] for r in turns[:-1])  # nothing is sent after a failed turn
    assert m["sessions_started"] == len(sessions)
    assert m["sessions_completed"] + m["sessions_failed"] + m["sessions_cut"] == m["sessions_started"]


def test_the_cli_runs_a_multi_turn_sharegpt_load_test(mock: MockHandle, sharegpt: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "evalsvc", "perf", "--model", "mock-model", "--url", mock.chat_url, "--dataset",
         "sharegpt", "--dataset-path", str(sharegpt), "--multi-turn", "--think-time", "0.01", "--number", "6",
         "--parallel", "1", "--max-tokens", "16", "--work-dir", str(tmp_path / "out"), "--json"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["results"]["parallel_1_number_6"]["metrics"]
    assert metrics["requests_succeeded"] == 6 and metrics["sessions_completed"] == 2
    assert metrics["by_turn"]["3"]["requests"] == 2 and metrics["think_time"] == 0.01


def _captured(mock: MockHandle) -> list[dict[str, Any]]:
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(mock.root_url + "/mock/requests") as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def test_the_server_receives_each_sessions_growing_history(sharegpt: Path, tmp_path: Path) -> None:
    with start_mock(ttft_ms=1, itl_ms=0, output_tokens=8, answers=REPLIES, capture_requests=True) as server:
        result = run_perf(cfg(server.chat_url, sharegpt, tmp_path, number=6, parallel=2))
        bodies = _captured(server)
    assert result.status == "completed" and len(bodies) == 6
    sessions: dict[str, list[list[dict[str, Any]]]] = defaultdict(list)
    for body in bodies:  # arrival order: a session's requests come in turn order
        sessions[body["messages"][1]["content"]].append(body["messages"])
    system = {"role": "system", "content": "Be brief."}

    def user(cid: str, k: int) -> dict[str, str]:
        return {"role": "user", "content": f"conversation {cid} question {k}"}

    def answer(k: int) -> dict[str, str]:
        return {"role": "assistant", "content": f"Answer {k} is here."}  # what the mock streamed

    for first, got in sessions.items():
        cid = first.split()[1]
        expected = [[system, user(cid, 1)],
                    [system, user(cid, 1), answer(1), user(cid, 2)],
                    [system, user(cid, 1), answer(1), user(cid, 2), answer(2), user(cid, 3)]]
        # 2 sessions at a time share 6 requests: the last one to start may be cut short, never reordered
        assert got == expected[:len(got)]
    assert max(len(got) for got in sessions.values()) == 3


@pytest.mark.parametrize("api", ["dashscope", "anthropic", "gemini"])
def test_every_dialect_sends_the_history_with_the_real_answers(sharegpt: Path, tmp_path: Path, api: str) -> None:
    with start_mock(ttft_ms=1, itl_ms=0, output_tokens=8, answers=REPLIES, capture_requests=True) as server:
        result = run_perf(cfg(url_for(server, api), sharegpt, tmp_path, api=api, model="gem-test", number=2,
                              parallel=1))
        bodies = _captured(server)
    assert result.status == "completed" and len(bodies) == 2
    second = json.dumps(bodies[1])
    assert "Answer 1 is here." in second and "question 2" in second and "Answer 1" not in json.dumps(bodies[0])
    if api == "anthropic":
        assert bodies[1]["system"] == "Be brief."
        assert [m["role"] for m in bodies[1]["messages"]] == ["user", "assistant", "user"]
    if api == "gemini":
        assert [c["role"] for c in bodies[1]["contents"]] == ["user", "model", "user"]


def test_with_a_prefix_cache_later_turns_have_a_lower_ttft(tmp_path: Path) -> None:
    """The mock's cache model: TTFT = ttft_ms + uncached prompt tokens x prefill_ms_per_token, in 16-token blocks.

    Turn 1 is "<user>" and 399 words: 400 tokens, 25 whole blocks, none cached. Turn 2 repeats them, then
    "<assistant>", the 4-word answer, "<user>" and 10 words: 416 tokens, the 400 of turn 1 cached, 16 not.
    """
    prefill_ms, ttft_ms, sessions = 1.0, 5.0, 2
    rows = [{"id": str(c), "conversations": [
        {"from": "human", "value": f"conversation{c} " + " ".join(["word"] * 398)}, {"from": "gpt", "value": "x"},
        {"from": "human", "value": " ".join(["more"] * 10)}, {"from": "gpt", "value": "y"}]} for c in range(sessions)]
    path = tmp_path / "long.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    with start_mock(ttft_ms=ttft_ms, itl_ms=0, output_tokens=4, prefill_ms_per_token=prefill_ms,
                    cache_tokens=100_000, cache_block_tokens=16) as server:
        result = run_perf(cfg(server.chat_url, path, tmp_path, number=2 * sessions, parallel=sessions))
        stats = server.stats()
    m = only(result)["metrics"]
    assert m["requests_succeeded"] == 4 and m["sessions_completed"] == sessions
    # the server's own account is exact: turn 2 found turn 1's 400 tokens, and prefilled only 16
    assert stats["cache"]["hit_tokens"] == sessions * 400
    assert stats["cache"]["miss_tokens"] == sessions * (400 + 16)
    turn1, later = m["ttft_ms_turn1_mean"], m["ttft_ms_turn2plus_mean"]
    assert turn1 >= ttft_ms + 400 * prefill_ms - 1  # a lower bound: a loaded machine only adds to it
    predicted_gain = (400 - 16) * prefill_ms  # 384 ms less prefill on turn 2
    assert later < turn1 - predicted_gain / 2, (turn1, later)


def test_a_duration_cap_cuts_the_sessions_waiting_between_turns(mock: MockHandle, sharegpt: Path,
                                                                 tmp_path: Path) -> None:
    result = run_perf(cfg(mock.chat_url, sharegpt, tmp_path, number=12, parallel=2, think_time=30, duration=1))
    m = only(result)["metrics"]
    assert m["stopped_by"] == "duration" and m["requests_total"] == m["requests_succeeded"] == 2
    assert (m["sessions_started"], m["sessions_cut"], m["sessions_completed"]) == (2, 2, 0)
    assert m["requests_unsent"] == 10
