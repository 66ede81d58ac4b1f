"""Multi-turn sessions (`multi_turn`): a conversation's human turns sent in order, each request carrying the
history so far with the model's real answers (read from the response the sender kept).

A session is one conversation replayed by one coroutine: turn 1 is the conversation's first prompt (system
message and first human message); after each answer it waits `think_time`, appends the answer and the next
human message to the history and sends that. A failed turn ends its session (the next turn would need the
answer). `number` counts requests: sessions claim request indices turn by turn from the shard's share, and
the session that finds none left is cut short. `parallel` counts sessions in flight. Open loop (`rate` > 0):
sessions (not requests) start at the schedule's offsets; later turns follow their session's own pace.

A session lives in one shard, so its history never crosses processes. `SessionStats` aggregates per-turn
TTFT and latency (turn 1 against turns 2+, and per turn index) and per-session figures; it merges exactly.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from time import perf_counter
from typing import Any

from ._engine import sleep_until
from ._kinds import FailureKind
from ._sender import Outcome, Sender, TurnOutcome
from ._stats import Dist
from .datasets import Prompt

TURN_ROWS = 16
"""Turns reported one by one in `by_turn`; later turns share the row "16+"."""
TURN_DISTS = ("ttft_ms_turn1", "ttft_ms_turn2plus", "latency_ms_turn1", "latency_ms_turn2plus",
              "session_latency_ms", "session_turns")


class SessionStats:
    """Per-turn and per-session figures of a multi-turn run (or one client process's share of it)."""

    def __init__(self) -> None:
        self.started = 0
        self.completed = 0
        self.failed = 0
        self.cut = 0
        self.dists: dict[str, Dist] = {name: Dist() for name in TURN_DISTS}
        self.by_turn: dict[int, tuple[list[int], Dist, Dist]] = {}  # turn -> ([requests, ok], ttft, latency)

    def add_turn(self, o: TurnOutcome) -> None:
        row = self.by_turn.get(min(o.turn, TURN_ROWS))
        if row is None:
            row = self.by_turn[min(o.turn, TURN_ROWS)] = ([0, 0], Dist(), Dist())
        row[0][0] += 1
        if o.kind is not None:
            return
        row[0][1] += 1
        later = "turn1" if o.turn == 1 else "turn2plus"
        if o.first is not None:
            ttft = (o.first - o.sent) * 1000.0
            row[1].add(ttft)
            self.dists[f"ttft_ms_{later}"].add(ttft)
        if o.end is not None:
            latency = (o.end - o.sent) * 1000.0
            row[2].add(latency)
            self.dists[f"latency_ms_{later}"].add(latency)

    def end_session(self, turns: int, started: float, ended: float, *, whole: bool, failed: bool) -> None:
        """A session that sent `turns` requests ended: `whole` (every turn succeeded), `failed` (a turn
        failed), else cut short (no requests left, or stopped)."""
        self.started += 1
        if whole:
            self.completed += 1
            self.dists["session_latency_ms"].add((ended - started) * 1000.0)
            self.dists["session_turns"].add(turns)
        elif failed:
            self.failed += 1
        else:
            self.cut += 1

    def merge(self, other: SessionStats) -> None:
        self.started += other.started
        self.completed += other.completed
        self.failed += other.failed
        self.cut += other.cut
        for name, dist in other.dists.items():
            self.dists[name].merge(dist)
        for turn, (counts, ttft, latency) in other.by_turn.items():
            row = self.by_turn.setdefault(turn, ([0, 0], Dist(), Dist()))
            row[0][0] += counts[0]
            row[0][1] += counts[1]
            row[1].merge(ttft)
            row[2].merge(latency)

    def metrics(self) -> dict[str, Any]:
        d = self.dists
        by_turn = {}
        for turn in sorted(self.by_turn):
            (requests, ok), ttft, latency = self.by_turn[turn]
            by_turn[f"{turn}+" if turn == TURN_ROWS else str(turn)] = {
                "requests": requests, "succeeded": ok,
                "ttft_ms_mean": ttft.mean, "ttft_ms_p50": ttft.percentile(50), "ttft_ms_p99": ttft.percentile(99),
                "latency_ms_mean": latency.mean, "latency_ms_p50": latency.percentile(50),
                "latency_ms_p99": latency.percentile(99)}
        return {
            "sessions_started": self.started,
            "sessions_completed": self.completed,
            "sessions_failed": self.failed,
            "sessions_cut": self.cut,
            "ttft_ms_turn1_mean": d["ttft_ms_turn1"].mean,
            "ttft_ms_turn1_p50": d["ttft_ms_turn1"].percentile(50),
            "ttft_ms_turn2plus_mean": d["ttft_ms_turn2plus"].mean,
            "ttft_ms_turn2plus_p50": d["ttft_ms_turn2plus"].percentile(50),
            "latency_ms_turn1_mean": d["latency_ms_turn1"].mean,
            "latency_ms_turn2plus_mean": d["latency_ms_turn2plus"].mean,
            "session_latency_ms_mean": d["session_latency_ms"].mean,
            "session_latency_ms_p50": d["session_latency_ms"].percentile(50),
            "session_turns_mean": d["session_turns"].mean,
            "by_turn": by_turn,
        }

    def percentiles(self) -> dict[str, dict[str, Any]]:
        return {name: self.dists[name].summary() for name in TURN_DISTS}


def start_sessions(plan: Any, sender: Sender, stats: Any, t0: float, stop: asyncio.Event,
                   record: Callable[[Outcome], None], tasks: set[asyncio.Task[Any]]) -> asyncio.Future[Any]:
    """Start this shard's sessions (the engine's `main`): `plan.parallel` at a time, closed loop or at the
    plan's offsets, until its `plan.count` requests are claimed. Session tasks are added to `tasks`."""
    loop = asyncio.get_running_loop()
    conversations: list[Prompt] = plan.sessions
    claimed = 0  # requests of this shard's share handed to sessions so far
    config, dialect = sender.config, sender.dialect
    think = float(config.think_time)
    if stats.sessions is None:
        stats.sessions = SessionStats()
    sessions: SessionStats = stats.sessions
    numbers = itertools.count()

    def claim() -> int | None:
        nonlocal claimed
        if claimed >= plan.count or stop.is_set():
            return None
        claimed += 1
        return int(plan.start + plan.step * (claimed - 1))

    async def session(j: int, due: float | None) -> None:
        sid = plan.start + plan.step * j  # unique over the shards, as request indices are
        first = conversations[sid % len(conversations)]
        history: list[dict[str, Any]] = list(first.messages or [{"role": "user", "content": first.text or ""}])
        tokens = first.tokens
        sent = 0
        began = ended = 0.0
        whole = failed = False  # neither: cut short (no request left, stopped, cancelled between turns)
        try:
            for t, turn in enumerate([first, *(first.turns or ())], 1):
                if t > 1:
                    if think:
                        await asyncio.sleep(think)
                    history.append({"role": "user", "content": _user_text(turn)})
                    tokens += turn.tokens
                i = claim()
                if i is None:
                    return
                body = dialect.build(config, Prompt(messages=history, tokens=tokens, max_tokens=turn.max_tokens))
                out = TurnOutcome(i, due if t == 1 else None, sid, t)
                out.prompt_tokens = tokens
                await sender.send(i, out.scheduled, out, sender.encode(body))
                record(out)
                sessions.add_turn(out)
                if sent == 0:
                    began = out.sent
                sent += 1
                ended = out.end or perf_counter()
                if out.kind is not None:
                    failed = out.kind != FailureKind.CANCELLED  # a request cancelled by a stop was cut
                    return
                history.append({"role": "assistant", "content": out.text})
                tokens += out.output_tokens
            whole = True
        finally:
            if sent:
                sessions.end_session(sent, began, ended, whole=whole, failed=failed)

    if plan.offsets is None:
        async def closed_worker() -> None:
            while not stop.is_set() and claimed < plan.count:
                await session(next(numbers), None)

        for _ in range(min(plan.parallel, plan.count)):
            tasks.add(loop.create_task(closed_worker()))
        return asyncio.gather(*tasks)

    sem = asyncio.Semaphore(plan.parallel)
    offsets = plan.offsets

    async def one(j: int, due: float) -> None:
        try:
            await session(j, due)
        finally:
            sem.release()

    async def dispatcher() -> None:
        for j in range(len(offsets)):
            if claimed >= plan.count:
                break  # every request is taken: no more sessions start
            due = t0 + offsets[j]
            await sleep_until(due)
            if stop.is_set() or claimed >= plan.count:
                break
            await sem.acquire()
            if stop.is_set() or claimed >= plan.count:
                sem.release()
                break
            task = loop.create_task(one(j, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*list(tasks))

    return loop.create_task(dispatcher())


def _user_text(turn: Prompt) -> str:
    if turn.messages:
        return str(turn.messages[-1].get("content", ""))
    return turn.text or ""
