"""The one child-process toolkit: start a child that imports this evalsvc, signal its group, end it when
its parent goes, and talk to it over a typed message channel.

Used by the perf client shards (perf/_shards.py), the eval zygote and its children (eval/_zygote.py,
eval/_child.py) and the service's jobs (jobs/_supervisor.py, jobs/_child.py). What differs between them
stays theirs: the zygote forks a warm process per dataset, shards run a fresh interpreter each, a job
child gets its own session so a cancel reaches everything it started.

Start: `python -P -m evalsvc.core._entry MODULE:FUNCTION ARGS` with PYTHONPATH led by the directory holding
this evalsvc, so a child imports the very code that started it (even from a source tree that is not
installed), and `-P` keeps the working directory (where runs write) off sys.path, so nothing there can
shadow a module. A parent that hands over its own sys.path (where callers' fakes and plugins live) does it
in its first message (`parent_sys_path()` there, `adopt_sys_path()` here).

Lifeline: the child holds the read end of a pipe whose write end only the parent holds. End of file on
it means the parent is gone, however it went (exit, crash, kill -9): `watch_lifeline` calls back then.

Channel: frames of a 4-byte big-endian length and a payload, over a pipe or a socket. Payloads are
orjson (messages a service relays: dicts with a "type" key, see the TypedDicts beside each use) or
pickle (between processes of one run, where the messages are dataclasses holding Python objects).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import orjson

Codec = Literal["json", "pickle"]

PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
"""The directory that holds this evalsvc package: first on every child's PYTHONPATH."""

_HEADER = struct.Struct("!I")
MAX_FRAME = 1 << 30
STDERR_TAIL_LINES = 30


# ---- starting ------------------------------------------------------------------------------------

def child_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: `base` (default: ours) with PYTHONPATH led by PACKAGE_PARENT."""
    env = dict(os.environ if base is None else base)
    rest = [p for p in (env.get("PYTHONPATH") or "").split(os.pathsep) if p and p != PACKAGE_PARENT]
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT, *rest])
    return env


def command(target: str, *args: str) -> list[str]:
    """The argv that calls `target` ("module:function") with `args` in a fresh interpreter (see _entry.py),
    the working directory kept off sys.path."""
    return [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []), "-m", "evalsvc.core._entry",
            target, *args]


def parent_sys_path() -> list[str]:
    """This process's sys.path, absolute: for a child to adopt (the cwd it stood for included)."""
    return [os.path.abspath(p) if p else os.getcwd() for p in sys.path]


def adopt_sys_path(paths: Sequence[str]) -> None:
    """In a child: put the parent's sys.path first, keeping our own entries after it."""
    sys.path[:] = list(paths) + [p for p in sys.path if p not in paths]


def start(target: str, *args: str, pass_fds: Sequence[int] = (), stdout: Any = subprocess.DEVNULL,
          stderr: Any = None, new_session: bool = False, cwd: str | Path | None = None) -> subprocess.Popen[bytes]:
    """Start a child calling `target` ("module:function") with `args` (see `command` and `child_env`);
    stdin is /dev/null.

    Args:
        pass_fds: descriptors the child inherits (pipe ends named in `args`).
        new_session: lead its own session and process group, so `signal_group(pid, ...)` reaches it and
            everything it starts, and a terminal's Ctrl-C does not.
    """
    return subprocess.Popen(command(target, *args), pass_fds=tuple(pass_fds), stdin=subprocess.DEVNULL,
                            stdout=stdout, stderr=stderr, start_new_session=new_session, env=child_env(), cwd=cwd)


def start_piped(target: str, *args: str, stdout: Any = subprocess.DEVNULL, stderr: Any = None,
                new_session: bool = False, cwd: str | Path | None = None) -> tuple[subprocess.Popen[bytes], int, int]:
    """Start a child with two pipes (see `start`): `target` is called as (CONTROL_FD, EVENTS_FD, *args).

    The child reads CONTROL_FD, whose end of file is its lifeline (see `watch_lifeline`), and writes its
    messages to EVENTS_FD; the parent holds the other ends only.

    Returns:
        (the process, the write end of the control pipe, the read end of the events pipe).
    """
    control_r, control_w = os.pipe()
    events_r, events_w = os.pipe()
    try:
        process = start(target, str(control_r), str(events_w), *args, pass_fds=(control_r, events_w),
                        stdout=stdout, stderr=stderr, new_session=new_session, cwd=cwd)
    except BaseException:
        os.close(control_w)
        os.close(events_r)
        raise
    finally:
        os.close(control_r)
        os.close(events_w)
    return process, control_w, events_r


async def start_async(target: str, *args: str, pass_fds: Sequence[int] = (), stdout: Any = subprocess.DEVNULL,
                      stderr: Any = None, new_session: bool = False) -> asyncio.subprocess.Process:
    """`start` for asyncio callers: the child's pipes become asyncio streams."""
    return await asyncio.create_subprocess_exec(
        *command(target, *args), pass_fds=tuple(pass_fds), stdin=subprocess.DEVNULL, stdout=stdout,
        stderr=stderr, start_new_session=new_session, env=child_env())


def signal_group(pid: int | None, sig: int) -> None:
    """Signal the process group `pid` leads (it and what it started), or the process alone if it leads
    none yet (started a moment ago); a process already gone is not an error."""
    if pid is None:
        return
    try:
        os.killpg(pid, sig)
        return
    except (ProcessLookupError, PermissionError):
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def describe_exit(code: int | None) -> str:
    """'exit code 3', 'killed by SIGKILL' or 'exit code unknown' for a Popen-style return code."""
    if code is None:
        return "exit code unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class StderrTail:
    """The last lines a child wrote to stderr (its pipe drained by a thread so the child never blocks)."""

    def __init__(self, stream: IO[bytes] | None, lines: int = STDERR_TAIL_LINES) -> None:
        self.lines: deque[str] = deque(maxlen=lines)
        self._thread: threading.Thread | None = None
        if stream is not None:
            self._thread = threading.Thread(target=self._drain, args=(stream,), name="evalsvc-stderr", daemon=True)
            self._thread.start()

    def _drain(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in stream:
                self.lines.append(line.decode(errors="replace").rstrip())
        with contextlib.suppress(OSError):
            stream.close()

    def text(self, timeout: float = 1.0, last: int = 3) -> str:
        """The last `last` non-blank lines joined by ' | ' (after the child's stderr closed, or `timeout`)."""
        if self._thread is not None:
            self._thread.join(timeout)
        shown = [ln.strip() for ln in self.lines if ln.strip()]
        return " | ".join(shown[-last:])


# ---- the lifeline --------------------------------------------------------------------------------

def watch_lifeline(fd: int, on_gone: Callable[[], Any], *, name: str = "evalsvc-lifeline") -> threading.Thread:
    """In a child: call `on_gone()` (on a daemon thread) once `fd` reaches end of file: the parent is gone.

    Reads the raw descriptor (no Python file object, whose lock a fork could inherit); what arrives
    before EOF is discarded, so use it on a pipe that carries nothing more, or read it yourself.
    """

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 65536):
                pass
        on_gone()

    thread = threading.Thread(target=watch, name=name, daemon=True)
    thread.start()
    return thread


# ---- the channel ---------------------------------------------------------------------------------

def encode(message: Any, codec: Codec = "json") -> bytes:
    """One frame: length, then the message as orjson (numpy values and non-str keys allowed) or pickle."""
    if codec == "json":
        payload = orjson.dumps(message, default=str, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    else:
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def decode(payload: bytes, codec: Codec = "json") -> Any:
    return orjson.loads(payload) if codec == "json" else pickle.loads(payload)


class FrameDecoder:
    """Turns a byte stream into messages, whatever size the chunks come in."""

    def __init__(self, codec: Codec = "json") -> None:
        self.codec = codec
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """The messages completed by `data` (a frame that does not decode is skipped)."""
        self._buffer += data
        out = []
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            if size > MAX_FRAME:
                raise ValueError(f"a frame of {size} bytes: not a channel")
            end = _HEADER.size + size
            if len(self._buffer) < end:
                break
            payload = bytes(self._buffer[_HEADER.size:end])
            del self._buffer[:end]
            try:
                out.append(decode(payload, self.codec))
            except (ValueError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
                continue
        return out


def write_all(fd: int, data: bytes) -> None:
    """Write every byte to a blocking descriptor."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Channel:
    """One direction of messages over a descriptor, blocking; `send` is thread-safe.

    The descriptor is read and written raw: safe in a process that forks (see eval/_child.py).
    """

    def __init__(self, fd: int, codec: Codec = "json") -> None:
        self.fd = fd
        self.codec = codec
        self._lock = threading.Lock()
        self._decoder = FrameDecoder(codec)
        self._ready: deque[Any] = deque()

    def send(self, message: Any) -> None:
        """Send one message. Raises OSError (BrokenPipeError) when the other side is gone."""
        data = encode(message, self.codec)
        with self._lock:
            if self.fd < 0:
                raise BrokenPipeError("channel closed")
            write_all(self.fd, data)

    def recv(self) -> Any:
        """The next message. Raises EOFError at end of stream."""
        while not self._ready:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError("the other side closed the channel")
            self._ready.extend(self._decoder.feed(chunk))
        return self._ready.popleft()

    def close(self) -> None:
        with self._lock:
            if self.fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(self.fd)
                self.fd = -1

    def reset_after_fork(self) -> None:
        """In a forked child that must not use this channel: a fresh lock, and no descriptor."""
        self._lock = threading.Lock()
        self.fd = -1


async def read_frames(fd: int, codec: Codec = "json") -> AsyncIterator[Any]:
    """The messages arriving on the read end `fd` of a pipe, on the running loop, until end of stream.

    Takes ownership of `fd` (closed at the end). A frame cut short (the writer was killed) is dropped.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                os.fdopen(fd, "rb", buffering=0))
    decoder = FrameDecoder(codec)
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                return
            for message in decoder.feed(data):
                yield message
    finally:
        transport.close()
