"""Shards as Ray actors: one sweep point's load over the nodes of a Ray cluster (the optional `ray` extra).

The second transport beside LocalShards (perf/_shards.py), driven by the same `drive`: the same plans (one
schedule split by `_run.py`), the same messages (Ready, Progress, Done, Failed), the same start barrier, stop
rules and exact merge. What differs is only how messages travel and where the shard runs:

- each shard is a `ShardActor` (one CPU, scheduled SPREAD so the actors land on different nodes when they
  can), running the very `_shard_async` a local client process runs, on its own uvloop in a thread of the
  actor; Start/Stop go in through actor calls, messages come out through `poll` (long-polled by the driver);
- clocks: Start carries no absolute instant (another machine has another clock): the driver sends the delay
  until the common start, the actor adds it to its own perf_counter. Everything an actor reports is a
  duration or an offset from its own start (its RunStats, its request records), so the merge never mixes
  two machines' clocks;
- request records are written on the actor's node and sent back with Done; the driver writes them where a
  local shard would have (the run directory), so the output files are the same;
- an actor (or its node) that dies is seen as the end of its stream, like a dead local process: before the
  start it fails the run (ClientStartError), after it the others' numbers are kept and the run's status says
  which actor died and why (Ray's error, first line).

The summary's `clients` list says where each actor ran (node_id, node_ip, host, pid), its share of the load,
its CPU share and its own client-bound verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable
from time import perf_counter
from typing import Any

from ... import __version__
from .._cluster import connect, error_line
from ..errors import ClientStartError
from ._engine import ShardPlan
from ._shards import STOP_GRACE_S, Done, Failed, ShardedRun, ShardJob, Start, Stop, drive

POLL_S = 0.25
"""How long one `poll` call waits for a message before returning empty (bounds how late a stop is seen)."""
ACTOR_PREFIX = "evalsvc-shard-"
_END = "end"


class _Control:
    """The actor's control channel as `_shard_async` reads it: recv() blocks, close() is the lifeline's end."""

    def __init__(self) -> None:
        self.q: queue.Queue[Any] = queue.Queue()

    def send(self, message: Any) -> None:
        self.q.put(message)

    def recv(self) -> Any:
        message = self.q.get()
        if message is _END:
            self.q.put(_END)  # every later recv ends too
            raise EOFError
        return message

    def close(self) -> None:
        self.q.put(_END)


class _Events:
    """The actor's event channel: what `_shard_async` sends waits here for the driver's next `poll`."""

    def __init__(self) -> None:
        self.q: queue.Queue[Any] = queue.Queue()

    def send(self, message: Any) -> None:
        self.q.put(message)

    def close(self) -> None:
        self.q.put(_END)


class ShardActor:
    """One shard on a Ray node (wrapped by `ray.remote` in the driver; plain class so it pickles by name)."""

    def __init__(self) -> None:
        self.control = _Control()
        self.events = _Events()
        self.thread: threading.Thread | None = None
        self.records_dir: str | None = None

    def begin(self, job: ShardJob) -> dict[str, Any]:
        """Take the job and warm up in the background (Ready follows); return where this actor runs."""
        import ray

        if job.records_path is not None:  # written on this node, sent back with Done
            self.records_dir = tempfile.mkdtemp(prefix="evalsvc-ray-shard-")
            job.records_path = os.path.join(self.records_dir, "records.jsonl")
        self.thread = threading.Thread(target=self._main, args=(job,), name="evalsvc-ray-shard", daemon=True)
        self.thread.start()
        context = ray.get_runtime_context()
        return {"node_id": context.get_node_id(), "node_ip": ray.util.get_node_ip_address(),
                "host": socket.gethostname(), "pid": os.getpid(), "version": __version__}

    def _main(self, job: ShardJob) -> None:
        from ._shards import _shard_async

        loop: asyncio.AbstractEventLoop
        try:
            import uvloop

            loop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
            loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(_shard_async(job, self.control, self.events))  # type: ignore[arg-type]
        except BaseException as exc:  # report, never hang the driver
            self.events.send(Failed(f"{type(exc).__name__}: {exc}"))
        finally:
            loop.close()
            self.events.close()

    def start(self, delay: float) -> None:
        """The common start, `delay` seconds from now on this actor's own clock."""
        self.control.send(Start(perf_counter() + max(0.0, delay)))

    def stop(self) -> None:
        self.control.send(Stop())

    def poll(self, timeout: float) -> list[Any]:
        """The messages so far (waiting up to `timeout` for the first); `_END` last once the shard finished.
        Done's records come back as the file's bytes."""
        out: list[Any] = []
        try:
            out.append(self.events.q.get(timeout=timeout))
            while True:
                out.append(self.events.q.get_nowait())
        except queue.Empty:
            pass
        for k, message in enumerate(out):
            if isinstance(message, Done) and message.records:
                with open(message.records, "rb") as f:
                    data = f.read()
                os.unlink(message.records)
                out[k] = Done(message.stats, message.reason, data)  # type: ignore[arg-type]
        return out

    def close(self) -> None:
        """Cut the lifeline (the shard stops sending) and wait for it to wind down."""
        self.control.close()
        if self.thread is not None:
            self.thread.join(STOP_GRACE_S)
        if self.records_dir is not None:
            import shutil

            shutil.rmtree(self.records_dir, ignore_errors=True)


class _RayShard:
    """The driver's side of one actor: a Transport for `drive`."""

    def __init__(self, ray: Any, actor_class: Any, index: int, total: int, run_id: str,
                 inbox: asyncio.Queue[tuple[int, Any]], records_path: str | None) -> None:
        self.ray = ray
        self.index = index
        self.total = total
        self.name = f"{ACTOR_PREFIX}{run_id}-{index}"
        # one CPU each (a load generator needs a core), spread over the nodes, never restarted (a dead one is
        # reported, not silently replaced mid-run); poll, start/stop and close run on the actor's threads
        self.actor = actor_class.options(name=self.name, num_cpus=1, max_concurrency=4, scheduling_strategy="SPREAD",
                                         max_restarts=0).remote()
        self.inbox = inbox
        self.records_path = records_path
        self.info: dict[str, Any] = {}
        self.error: str | None = None
        self.pump: asyncio.Task[None] | None = None
        self.refs: list[Any] = []

    async def begin(self, job: ShardJob) -> None:
        try:
            self.info = await self.actor.begin.remote(job)
        except Exception as exc:
            raise ClientStartError(f"{self.describe()} could not start: {error_line(exc)}") from None
        if self.info.get("version") != __version__:
            raise ClientStartError(f"{self.describe()} runs evalsvc {self.info.get('version')}, this process "
                                   f"{__version__}: install the same evalsvc on every node")
        self.pump = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        try:
            while True:
                messages = await self.actor.poll.remote(POLL_S)
                for message in messages:
                    if isinstance(message, str):  # _END: the shard finished
                        self.inbox.put_nowait((self.index, None))
                        return
                    if isinstance(message, Done) and message.records is not None:
                        message = Done(message.stats, message.reason, await asyncio.to_thread(
                            self._write_records, message.records))
                    self.inbox.put_nowait((self.index, message))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the actor or its node died (RayActorError, ...)
            self.error = error_line(exc)
            self.inbox.put_nowait((self.index, None))

    def _write_records(self, data: Any) -> str | None:
        if self.records_path is None:
            return None
        with open(self.records_path, "wb") as f:
            f.write(data)
        return self.records_path

    def describe(self) -> str:
        where = ""
        if self.info:
            where = f" on node {str(self.info['node_id'])[:12]} ({self.info['node_ip']}, pid {self.info['pid']})"
        return f"Ray actor {self.index + 1} of {self.total}{where}"

    def where(self) -> dict[str, Any]:
        return {k: self.info.get(k) for k in ("node_id", "node_ip", "host", "pid")}

    def send(self, message: Any) -> None:
        with contextlib.suppress(Exception):
            if isinstance(message, Start):  # the driver's instant as a delay: the actor has its own clock
                self.refs.append(self.actor.start.remote(message.t0 - perf_counter()))
            elif isinstance(message, Stop):
                self.refs.append(self.actor.stop.remote())

    async def ended(self) -> tuple[str, str]:
        return (f"the actor died: {self.error}" if self.error else "the actor ended"), ""

    async def aclose(self) -> None:
        if self.pump is not None:
            self.pump.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.actor.close.remote(), STOP_GRACE_S + 1)
        with contextlib.suppress(Exception):
            self.ray.kill(self.actor, no_restart=True)

    def close(self) -> None:  # pragma: no cover - RayShards closes with aclose
        with contextlib.suppress(Exception):
            self.ray.kill(self.actor, no_restart=True)


class RayShards:
    """Shards as Ray actors on the cluster at `address` (see the module docstring)."""

    def __init__(self, address: str) -> None:
        self.address = address

    async def run(self, config: Any, plans: list[ShardPlan], bodies: list[bytes], prompt_tokens: list[int],
                  records_dir: str | None, stop: asyncio.Event,
                  on_progress: Callable[[int, int, int], None]) -> ShardedRun:
        """Run one sweep point over `len(plans)` Ray actors and merge what they measured.

        Raises:
            MissingExtra: Ray is not installed.
            ClientStartError: the cluster cannot be reached, or an actor failed before it was ready.
        """
        ray = await asyncio.to_thread(connect, self.address)
        actor_class = ray.remote(ShardActor)
        inbox: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        run_id = uuid.uuid4().hex[:12]
        shards: list[_RayShard] = []
        try:
            for k, plan in enumerate(plans):
                part = os.path.join(records_dir, f".{plan.key}.part{k}.jsonl") if records_dir else None
                shards.append(_RayShard(ray, actor_class, k, len(plans), run_id, inbox, part))
            jobs = [ShardJob(config, plan, bodies, prompt_tokens, "ray" if records_dir else None) for plan in plans]
            await asyncio.gather(*(s.begin(job) for s, job in zip(shards, jobs, strict=True)))
            return await drive(config, plans, shards, inbox, stop, on_progress)
        finally:
            await asyncio.shield(asyncio.gather(*(s.aclose() for s in shards), return_exceptions=True))
