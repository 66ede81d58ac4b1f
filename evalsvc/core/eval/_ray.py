"""Datasets as Ray actors: the evaluation's worker processes placed on the nodes of a Ray cluster.

The alternative executor behind the zygote's interface (`fork()` a worker per dataset; the worker takes its
task with `start(spec)`, reports on `events`, stops on `terminate()`, is reaped by `finish()`): `RayZygote`
asks the cluster for one `DatasetActor` per dataset (one CPU, scheduled SPREAD), and that actor runs, on its
node, exactly what a local run runs: a zygote (eval/_zygote.py, importing evalscope there) and one forked
worker. The driver's `run_eval` is unchanged: plan, preflight, progress, timeout, cancel and the reading of
the results are the local ones, so the scores and counts are the same.

Each node needs evalsvc with the `eval` extra, and must see the run directory (and any `dataset_dir`) at
the same path as the driver: a shared filesystem, or a cluster on one machine. Cancel reaches the remote
work: `terminate()` signals the worker's process group on its node; a driver that dies takes its actors
with it (Ray ends an owner's actors), and with them their zygotes and workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import uuid
from typing import Any

from ... import __version__
from .._cluster import connect, error_line
from ._zygote import _KILL_GRACE_S

ACTOR_PREFIX = "evalsvc-dataset-"
POLL_S = 0.25


class DatasetActor:
    """On a node: a zygote and its one worker, driven from the actor's calls (plain class: pickles by name)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="evalsvc-ray-dataset", daemon=True)
        self.thread.start()
        self.zygote: Any = None
        self.worker: Any = None

    def _call(self, coro: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def begin(self, in_flight: int = 0) -> dict[str, Any]:
        """Start the zygote here (it imports evalscope) and fork the worker; return where it runs.
        `in_flight` > 0 bounds the worker's model requests in flight."""
        import ray

        from ._zygote import Zygote

        async def start() -> None:
            self.zygote = await Zygote.start(in_flight=in_flight)
            self.worker = await self.zygote.fork()

        self._call(start())
        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": self.worker.pid,
                "version": __version__}

    def start(self, spec: dict[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self.worker.start, spec)

    def poll(self, timeout: float) -> list[Any]:
        """The worker's events so far (waiting up to `timeout` for the first); None last when its stream ended."""

        async def drain() -> list[Any]:
            out: list[Any] = []
            with contextlib.suppress(asyncio.TimeoutError):
                out.append(await asyncio.wait_for(self.worker.events.get(), timeout))
            while not self.worker.events.empty():
                out.append(self.worker.events.get_nowait())
            return out

        return list(self._call(drain()))

    def terminate(self, sig: int) -> None:
        self.loop.call_soon_threadsafe(self.worker.terminate, sig)

    def finish(self, grace: float) -> tuple[int | None, str]:
        """Reap the worker (killing it if it lingers), end the zygote; (exit code, its last stderr line)."""

        async def finish() -> tuple[int | None, str]:
            code = await self.worker.finish(grace)
            crash = self.worker.crash_reason()
            self.zygote.close()
            await self.zygote.wait_closed()
            return code, crash

        return tuple(self._call(finish()))


class RayWorker:
    """The driver's side of one dataset's actor, with the interface of eval/_zygote.py's WorkerHandle."""

    def __init__(self, ray: Any, actor: Any, info: dict[str, Any]) -> None:
        self.ray = ray
        self.actor = actor
        self.pid = int(info["pid"])
        self.node_id = str(info["node_id"])
        self.events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.started_ok = True
        self._crash = ""
        self._dead: str | None = None
        self._finished: asyncio.Future[tuple[int | None, str]] | None = None
        self._pump = asyncio.ensure_future(self._relay())

    async def _relay(self) -> None:
        try:
            while True:
                for event in await self.actor.poll.remote(POLL_S):
                    self.events.put_nowait(event)
                    if event is None:
                        return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the actor or its node died
            self._dead = error_line(exc)
            self.events.put_nowait(None)

    def start(self, spec: dict[str, Any]) -> None:
        self.actor.start.remote(spec)

    def terminate(self, sig: int = signal.SIGTERM) -> None:
        with contextlib.suppress(Exception):
            self.actor.terminate.remote(int(sig))

    async def finish(self, grace: float = _KILL_GRACE_S) -> int | None:
        code: int | None = None
        try:
            code, self._crash = await asyncio.wait_for(self.actor.finish.remote(grace), 3 * grace + 5)
        except Exception as exc:  # dead, or it would not end: the actor goes (and its processes with it)
            self._dead = self._dead or error_line(exc)
        finally:
            self._pump.cancel()
            with contextlib.suppress(Exception):
                self.ray.kill(self.actor, no_restart=True)
        return code

    def crash_reason(self) -> str:
        if self._dead:
            return f"the Ray actor on node {self.node_id[:12]} died: {self._dead}"
        return self._crash


class RayZygote:
    """Forks a dataset's worker as a Ray actor on the cluster at `address` (see the module docstring)."""

    def __init__(self, ray: Any, in_flight: int = 0) -> None:
        self.ray = ray
        self.in_flight = in_flight
        self.actor_class = ray.remote(DatasetActor)
        self.run_id = uuid.uuid4().hex[:12]
        self.count = 0

    @classmethod
    async def start(cls, address: str, in_flight: int = 0) -> RayZygote:
        return cls(await asyncio.to_thread(connect, address), in_flight)

    async def fork(self) -> RayWorker:
        """A worker on some node, its zygote started there.

        Raises:
            RuntimeError: the actor could not start (Ray's reason, first line).
        """
        self.count += 1
        actor = self.actor_class.options(name=f"{ACTOR_PREFIX}{self.run_id}-{self.count}", num_cpus=1,
                                         max_concurrency=4, scheduling_strategy="SPREAD", max_restarts=0).remote()
        try:
            info = await actor.begin.remote(self.in_flight)
        except asyncio.CancelledError:
            self.ray.kill(actor, no_restart=True)
            raise
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.ray.kill(actor, no_restart=True)
            raise RuntimeError(f"the evalscope worker could not start on the Ray cluster: {error_line(exc)}") from None
        if info.get("version") != __version__:
            self.ray.kill(actor, no_restart=True)
            raise RuntimeError(f"a Ray node runs evalsvc {info.get('version')}, this process {__version__}: "
                               "install the same evalsvc on every node")
        return RayWorker(self.ray, actor, info)

    def close(self) -> None:
        """Nothing to end here: each actor is ended by its worker's finish()."""

    async def wait_closed(self) -> None:
        return None


