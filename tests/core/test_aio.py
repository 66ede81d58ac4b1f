"""run_blocking: the one blocking runner behind run_perf, run_eval and the CLI.

Signal behaviour is checked in a child process (a real SIGINT / SIGTERM reaching its main thread); each
child says "ready" once its coroutine runs, so no test depends on how long anything takes.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from evalsvc import PerfConfig, run_perf
from evalsvc.core._aio import run_blocking

ROOT = Path(__file__).resolve().parents[2]


def test_returns_the_result_and_raises_the_error() -> None:
    async def ok() -> int:
        await asyncio.sleep(0)
        return 42

    async def broken() -> None:
        raise ValueError("boom")

    assert run_blocking(ok()) == 42
    with pytest.raises(ValueError, match="boom"):
        run_blocking(broken())


def test_runs_on_a_fresh_loop_in_a_helper_thread_even_under_a_running_loop() -> None:
    seen: dict[str, Any] = {}

    async def inner() -> str:
        seen["loop"] = asyncio.get_running_loop()
        seen["thread"] = threading.current_thread()
        return "inner"

    async def cell() -> str:  # what Jupyter does: the caller's thread already runs a loop
        seen["outer"] = asyncio.get_running_loop()
        return run_blocking(inner())

    assert asyncio.run(cell()) == "inner"
    assert seen["loop"] is not seen["outer"] and seen["loop"].is_closed()
    assert seen["thread"] is not threading.current_thread()


def test_fast_uses_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def loop_type() -> type:
        return type(asyncio.get_running_loop())

    assert run_blocking(loop_type(), fast=True) is uvloop.Loop
    assert not issubclass(run_blocking(loop_type()), uvloop.Loop)


def test_leftover_tasks_are_cancelled_and_awaited() -> None:
    cleaned: list[str] = []

    async def background() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.append("background")

    async def main() -> str:
        asyncio.get_running_loop().create_task(background())
        await asyncio.sleep(0)
        return "done"

    assert run_blocking(main()) == "done"
    assert cleaned == ["background"]


def test_run_perf_works_under_a_running_event_loop(mock_server: Any, tmp_path: Path) -> None:
    # The Jupyter defect: run_perf ran its loop in the caller's thread ("Cannot run the event loop while
    # another loop is running").
    config = PerfConfig(model="mock-model", url=mock_server.chat_url, dataset="random", prompt_tokens=8,
                        max_tokens=4, number=3, parallel=2, work_dir=str(tmp_path))

    async def cell() -> Any:
        return run_perf(config)

    result = asyncio.run(cell())
    assert result.status == "completed"
    assert result["parallel_2_number_3"].metrics["requests_succeeded"] == 3


_CHILD = textwrap.dedent("""
    import asyncio, sys
    from evalsvc.core._aio import run_blocking

    mode = sys.argv[1]
    stop = asyncio.Event()

    async def main():
        print("ready", flush=True)
        if mode == "stubborn":          # ignores the stop request: only a second interrupt ends it
            await asyncio.sleep(3600)
        if mode == "nostop":            # no stop event given: the first interrupt cancels it
            await asyncio.sleep(3600)
        await stop.wait()
        await asyncio.sleep(0.05)       # a graceful stop still finishes its work (writes outputs, ...)
        return "stopped gracefully"

    try:
        print(run_blocking(main(), stop=None if mode == "nostop" else stop,
                           on_interrupt=lambda: print("interrupt noticed", flush=True)), flush=True)
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
        sys.exit(130)
""")


def _start(mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", proc.communicate()
    return proc


def _wait_for(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdout is not None
    got = proc.stdout.readline().strip()
    assert got == line, (got, proc.communicate())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_first_interrupt_stops_gracefully_and_returns_the_result(sig: int) -> None:
    proc = _start("graceful")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.splitlines() == ["interrupt noticed", "stopped gracefully"]


def test_second_interrupt_aborts_at_once() -> None:
    proc = _start("stubborn")
    proc.send_signal(signal.SIGINT)
    _wait_for(proc, "interrupt noticed")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out.strip() == "KeyboardInterrupt" and "Traceback" not in err


def test_without_a_stop_event_the_first_interrupt_cancels() -> None:
    proc = _start("nostop")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out.splitlines() == ["interrupt noticed", "KeyboardInterrupt"]


def test_the_signal_handlers_are_put_back() -> None:
    async def noop() -> None:
        return None

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    run_blocking(noop())
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_run_mock_works_under_a_running_loop_and_stops_on_ctrl_c() -> None:
    import os

    from evalsvc import MockConfig, run_mock

    urls: list[str] = []

    def ready(url: str) -> None:  # called once the port is bound: Ctrl-C it, as a user would
        urls.append(url)
        os.kill(os.getpid(), signal.SIGINT)

    async def cell() -> dict[str, Any]:
        return run_mock(MockConfig(port=0), on_ready=ready)

    final = asyncio.run(cell())
    assert urls and urls[0].startswith("http://127.0.0.1:")
    assert final["requests"] == 0  # the graceful path: the final counters come back
