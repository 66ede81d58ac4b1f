"""The parent's side of the worker processes (see _child.py): the zygote and the workers it forks.

Started, signalled and talked to with the child-process toolkit (core/_proc.py): framed orjson messages
on the control socket and on each worker's event pipe, a worker's stdin as its lifeline.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import socket
from typing import Any

from .. import _proc

_STREAM_LIMIT = 1 << 24
_KILL_GRACE_S = 3.0


def _tail(lines: collections.deque[str]) -> str:
    shown = [ln for ln in lines if ln.strip()]
    return shown[-1] if shown else ""


async def _pipe_reader(fd: int) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_STREAM_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0))
    return reader


async def _collect(reader: asyncio.StreamReader, into: collections.deque[str]) -> None:
    while True:
        line = await reader.readline()
        if not line:
            return
        into.append(line.decode(errors="replace").rstrip())


class WorkerHandle:
    """One forked worker: its event stream, its stdin, its stderr tail, its exit code."""

    def __init__(self, pid: int, stdin_fd: int) -> None:
        self.pid = pid
        self._stdin_fd = stdin_fd
        self.events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.started_ok = False
        """It said "ready"."""
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=30)
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._readers: list[asyncio.Task[None]] = []

    async def attach(self, events_fd: int, stderr_fd: int) -> None:
        self._readers = [asyncio.create_task(self._read_events(events_fd)),
                         asyncio.create_task(_collect(await _pipe_reader(stderr_fd), self.stderr_tail))]

    async def _read_events(self, events_fd: int) -> None:
        try:
            async for event in _proc.read_frames(events_fd, "json"):
                if not isinstance(event, dict):
                    continue
                if event.get("type") == "ready":
                    self.started_ok = True
                else:
                    self.events.put_nowait(event)
        finally:
            self.events.put_nowait(None)

    def start(self, spec: dict[str, Any]) -> None:
        """Send the task (a few KB into an empty pipe: the write cannot block)."""
        _proc.write_all(self._stdin_fd, _proc.encode(spec, "json"))

    def terminate(self, sig: int = signal.SIGTERM) -> None:
        """Signal the worker's whole session (it and the scoring processes it forked); one forked a moment
        ago may not lead its own group yet, and is signalled alone."""
        if self.exited.done():
            return
        _proc.signal_group(self.pid, sig)

    async def finish(self, grace: float = _KILL_GRACE_S) -> int | None:
        """Wait for the worker to exit, killing it if it lingers; return its exit code (None: unknown)."""
        code: int | None = None
        try:
            code = await asyncio.wait_for(asyncio.shield(self.exited), grace)
        except asyncio.TimeoutError:
            self.terminate(signal.SIGKILL)
            with contextlib.suppress(asyncio.TimeoutError):
                code = await asyncio.wait_for(asyncio.shield(self.exited), grace)
        if self._stdin_fd >= 0:
            os.close(self._stdin_fd)
            self._stdin_fd = -1
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*self._readers), 1.0)
        return code

    def crash_reason(self) -> str:
        return _tail(self.stderr_tail)


class Zygote:
    """The process that imported evalscope once and forks a worker per dataset on request."""

    def __init__(self, proc: asyncio.subprocess.Process, sock: socket.socket) -> None:
        self.proc = proc
        self.sock = sock
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=30)
        self.workers: dict[int, WorkerHandle] = {}
        self._early_exits: dict[int, int] = {}
        """Exit codes that arrived before their worker was registered."""
        self._replies: asyncio.Queue[int | None] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def start(cls, in_flight: int = 0) -> Zygote:
        """Start the zygote and wait until it has imported evalscope.

        `in_flight` > 0 bounds the model requests in flight across all the workers it forks.

        Raises:
            RuntimeError: it could not start (its last stderr line says why).
        """
        ours, theirs = socket.socketpair()
        try:
            proc = await _proc.start_async(
                "evalsvc.core.eval._child:zygote", str(theirs.fileno()), str(int(in_flight)),
                pass_fds=[theirs.fileno()], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                new_session=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        zygote = cls(proc, ours)
        assert proc.stdout is not None and proc.stderr is not None
        zygote._tasks.append(asyncio.create_task(_collect(proc.stderr, zygote.stderr_tail)))
        try:
            line = await proc.stdout.readline()
        except BaseException:  # cancelled while importing (the preflight failed): leave nothing behind
            zygote.close()
            await asyncio.shield(zygote.wait_closed())
            raise
        if not line.strip():
            await proc.wait()
            await asyncio.sleep(0.05)  # let the stderr reader catch up
            zygote.close()
            reason = _tail(zygote.stderr_tail) or f"exit code {proc.returncode}"
            raise RuntimeError(f"the evalscope worker process did not start: {reason}")
        zygote._tasks.append(asyncio.create_task(zygote._read_socket()))
        return zygote

    async def _read_socket(self) -> None:
        loop = asyncio.get_running_loop()
        decoder = _proc.FrameDecoder("json")
        try:
            while True:
                data = await loop.sock_recv(self.sock, 65536)
                if not data:
                    return
                for message in decoder.feed(data):
                    if "pid" in message:
                        self._replies.put_nowait(int(message["pid"]))
                    elif "exit" in message:
                        pid, code = int(message["exit"]), int(message["code"])
                        worker = self.workers.pop(pid, None)
                        if worker is None:
                            self._early_exits[pid] = code
                        elif not worker.exited.done():
                            worker.exited.set_result(code)
        except (OSError, ValueError):
            return
        finally:
            self._replies.put_nowait(None)

    async def fork(self) -> WorkerHandle:
        """A new worker, ready for its task.

        Raises:
            RuntimeError: the zygote is gone.
        """
        async with self._lock:
            stdin_r, stdin_w = os.pipe()
            events_r, events_w = os.pipe()
            stderr_r, stderr_w = os.pipe()
            try:
                socket.send_fds(self.sock, [b"f"], [stdin_r, events_w, stderr_w])
            except OSError as exc:
                for fd in (stdin_r, stdin_w, events_r, events_w, stderr_r, stderr_w):
                    os.close(fd)
                raise RuntimeError(f"the evalscope worker process is gone ({exc}): {_tail(self.stderr_tail)}") from None
            for fd in (stdin_r, events_w, stderr_w):
                os.close(fd)
            pid = await self._replies.get()
            if pid is None:
                for fd in (stdin_w, events_r, stderr_r):
                    os.close(fd)
                raise RuntimeError(f"the evalscope worker process is gone: {_tail(self.stderr_tail)}")
            worker = WorkerHandle(pid, stdin_w)
            if pid in self._early_exits:
                worker.exited.set_result(self._early_exits.pop(pid))
            else:
                self.workers[pid] = worker
        await worker.attach(events_r, stderr_r)
        return worker

    def close(self) -> None:
        """End the zygote (its workers are ended separately)."""
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.proc.returncode is None:
            _proc.signal_group(self.proc.pid, signal.SIGTERM)

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.proc.wait(), _KILL_GRACE_S)
        if self.proc.returncode is None:
            _proc.signal_group(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        for task in self._tasks:
            task.cancel()
