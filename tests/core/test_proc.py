"""The child-process toolkit: children import this evalsvc, frames survive any chunking, the lifeline
fires when the parent goes, a group signal reaches what a child started."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from evalsvc.core import _proc


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pid: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


@dataclass
class Note:
    text: str
    n: int


def test_frames_decode_whatever_the_chunking() -> None:
    data = (_proc.encode({"type": "progress", "done": 3}) + _proc.encode({"type": "log", "message": "é" * 70000})
            + _proc.encode([1, 2]))
    for size in (1, 3, 4096, len(data)):
        decoder = _proc.FrameDecoder("json")
        out = []
        for i in range(0, len(data), size):
            out += decoder.feed(data[i:i + size])
        assert out == [{"type": "progress", "done": 3}, {"type": "log", "message": "é" * 70000}, [1, 2]]


def test_a_frame_cut_short_is_not_a_message_and_a_bad_one_is_skipped() -> None:
    decoder = _proc.FrameDecoder("json")
    bad = b"\x00\x00\x00\x03{{{"
    assert decoder.feed(bad + _proc.encode({"a": 1}) + _proc.encode({"b": 2})[:-1]) == [{"a": 1}]
    with pytest.raises(ValueError, match="not a channel"):
        _proc.FrameDecoder("json").feed(b"\xff\xff\xff\xff")


def test_pickle_channel_carries_typed_messages_over_a_pipe() -> None:
    r, w = os.pipe()
    sender, receiver = _proc.Channel(w, "pickle"), _proc.Channel(r, "pickle")
    sender.send(Note("hi", 1))
    sender.send(Note("there", 2))
    sender.close()
    assert receiver.recv() == Note("hi", 1)
    assert receiver.recv() == Note("there", 2)
    with pytest.raises(EOFError):
        receiver.recv()
    receiver.close()
    with pytest.raises(BrokenPipeError):
        sender.send(Note("late", 3))


def test_async_reader_yields_messages_until_the_writer_closes() -> None:
    async def main() -> list[object]:
        r, w = os.pipe()
        channel = _proc.Channel(w, "json")
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, lambda: (channel.send({"n": 1}), channel.send({"n": 2}), channel.close()))
        return [m async for m in _proc.read_frames(r, "json")]

    assert asyncio.run(main()) == [{"n": 1}, {"n": 2}]


def test_child_env_puts_this_evalsvc_first_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["/elsewhere", _proc.PACKAGE_PARENT]))
    env = _proc.child_env()
    assert env["PYTHONPATH"].split(os.pathsep) == [_proc.PACKAGE_PARENT, "/elsewhere"]
    assert Path(_proc.PACKAGE_PARENT, "evalsvc", "core", "_proc.py").is_file()


def test_a_child_imports_this_evalsvc_and_not_a_shadow_in_its_cwd(tmp_path: Path) -> None:
    # a module in the working directory named like one the child imports must not shadow it
    (tmp_path / "orjson.py").write_text("raise SystemExit('shadowed')\n")
    out = tmp_path / "out.txt"
    child = _proc.start("tests.core._proc_helpers:write_origin", str(out), cwd=tmp_path)
    assert child.wait(60) == 0
    origin, orjson_origin = out.read_text().splitlines()
    assert origin == str(Path(_proc.__file__).resolve())
    assert not orjson_origin.startswith(str(tmp_path))


def test_describe_exit() -> None:
    assert _proc.describe_exit(3) == "exit code 3"
    assert _proc.describe_exit(-9) == "killed by SIGKILL"
    assert _proc.describe_exit(None) == "exit code unknown"


def test_lifeline_fires_when_the_parent_is_killed(tmp_path: Path) -> None:
    """A grandchild watching a pipe only its (killed) parent held learns at once that the parent is gone."""
    flag = tmp_path / "gone"
    script = f"""
import os, sys, time
from evalsvc.core import _proc
r, w = os.pipe()
child = os.fork()
if child == 0:
    os.close(w)
    _proc.watch_lifeline(r, lambda: (open({str(flag)!r}, "w").close(), os._exit(0)))
    time.sleep(60)
    os._exit(1)
os.close(r)
print(child, flush=True)
time.sleep(60)
"""
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=_proc.child_env())
    assert parent.stdout is not None
    grandchild = int(parent.stdout.readline())
    assert not flag.exists()
    parent.kill()  # no goodbye
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 20
    while not flag.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert flag.exists()
    assert wait_gone(grandchild)


def test_signal_group_reaches_what_the_child_started() -> None:
    child = _proc.start("tests.core._proc_helpers:sleep_with_a_child", stdout=subprocess.PIPE, new_session=True)
    assert child.stdout is not None
    grandchild = int(child.stdout.readline())
    _proc.signal_group(child.pid, signal.SIGTERM)
    assert child.wait(20) == -signal.SIGTERM
    assert wait_gone(grandchild), "the grandchild survived its group's SIGTERM"
    _proc.signal_group(child.pid, signal.SIGTERM)  # gone: not an error
    child.stdout.close()
