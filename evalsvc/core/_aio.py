"""`run_blocking(coro)`: the one way a blocking entry point (run_perf, run_eval, the CLI) runs a coroutine.

The coroutine always runs on a fresh event loop in a helper thread, and the caller's thread only waits:

- it works where a loop is already running in the caller's thread (Jupyter, an async web app calling a
  sync API): that loop is never touched, and nothing is patched (no nest_asyncio);
- interrupts are handled in one place. In the main thread, the first Ctrl-C (SIGINT, or SIGTERM, or a
  Jupyter "interrupt kernel") asks the run to stop gracefully: `stop` is set on the run's loop (without
  one, the coroutine is cancelled), and the call returns the run's result once it has written its outputs.
  A second one aborts at once: the coroutine is cancelled and KeyboardInterrupt is raised in the caller
  without waiting (the helper thread finishes the cancellation in the background).

Progress callbacks given to the coroutine are therefore called from the helper thread.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

_POLL_S = 0.1
"""How often the waiting thread looks whether an interrupt is to be passed on to the run."""


def new_event_loop(*, fast: bool = False) -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's when `fast` and uvloop is installed, asyncio's otherwise."""
    if fast:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class _Run:
    """The coroutine's side: its loop, its task, and how it ended."""

    def __init__(self, coro: Coroutine[Any, Any, Any], fast: bool) -> None:
        self.coro = coro
        self.fast = fast
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None
        self.started = threading.Event()
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._cancelled = False

    def thread_main(self) -> None:
        try:
            loop = self.loop = new_event_loop(fast=self.fast)
        except BaseException as exc:
            self.coro.close()
            self.error = exc
            self.started.set()
            self.done.set()
            return
        try:
            asyncio.set_event_loop(loop)
            with self._lock:
                self.task = loop.create_task(self.coro)
                if self._cancelled:  # cancelled before it started
                    self.task.cancel()
            self.started.set()
            self.result = loop.run_until_complete(self.task)
        except BaseException as exc:
            self.error = exc
        finally:
            self.started.set()
            try:
                _shutdown(loop)
            finally:
                asyncio.set_event_loop(None)
                loop.close()
                self.done.set()

    def call(self, func: Callable[[], Any]) -> None:
        """Run `func` on the coroutine's loop (from any thread); a no-op once the loop is closed."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(func)
            except RuntimeError:  # closed meanwhile
                pass

    def cancel(self) -> None:
        """Cancel the coroutine (from any thread), now or as soon as it has started."""
        with self._lock:
            self._cancelled = True
            task = self.task
        if task is not None:
            self.call(task.cancel)


def _shutdown(loop: asyncio.AbstractEventLoop) -> None:
    """What asyncio.run does after its main task: cancel leftovers, finish async generators and the executor."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())


def run_blocking(coro: Coroutine[Any, Any, T], *, stop: asyncio.Event | None = None, fast: bool = False,
                 on_interrupt: Callable[[], None] | None = None, name: str = "evalsvc") -> T:
    """Run `coro` to its end on a fresh event loop in a helper thread and return its result.

    Args:
        coro: the coroutine (not yet started).
        stop: set on the run's loop at the first interrupt; the coroutine is expected to stop early and
            return its (partial) result. Without it, the first interrupt cancels the coroutine.
        fast: use uvloop when it is installed (the load generator does).
        on_interrupt: called in the caller's thread at the first interrupt (e.g. to print "stopping...").
        name: the helper thread's name.

    Returns:
        What the coroutine returned.

    Raises:
        Whatever the coroutine raised; KeyboardInterrupt at a second interrupt, or at the first when the
        coroutine was cancelled by it.
    """
    run = _Run(coro, fast)
    thread = threading.Thread(target=run.thread_main, name=name, daemon=True)
    interrupts = _Interrupts(run)
    acted = False
    try:
        interrupts.install()
        thread.start()
        while True:
            try:
                # Our own Event, not Thread.join: on CPython 3.11 a KeyboardInterrupt that lands inside
                # join(timeout) marks the thread stopped while it still runs (bpo-45274).
                while not run.done.wait(_POLL_S):
                    if interrupts.count and not acted and run.started.is_set():
                        acted = True
                        if on_interrupt is not None:
                            on_interrupt()
                        if stop is not None:
                            run.call(stop.set)
                        else:
                            run.cancel()
                break
            except KeyboardInterrupt:
                # Only when our handlers are not installed (not the main thread, or the application's own
                # SIGINT handler raised it): the first one counts as an interrupt, a second one aborts.
                if interrupts.installed or interrupts.count:
                    run.cancel()
                    raise
                interrupts.count += 1
    finally:
        interrupts.restore()
    if run.error is not None:
        if isinstance(run.error, asyncio.CancelledError) and interrupts.count:
            raise KeyboardInterrupt from None
        raise run.error
    return run.result  # type: ignore[no-any-return]


def _is_asyncio_runner_handler(handler: Any) -> bool:
    """asyncio.run's SIGINT handler: functools.partial(Runner._on_sigint bound method, main_task=...)."""
    runner = getattr(asyncio, "Runner", None)  # Python >= 3.11
    method = getattr(handler, "func", handler)
    return runner is not None and getattr(method, "__func__", None) is getattr(runner, "_on_sigint", None)


class _Interrupts:
    """While a run is waited for in the main thread, SIGINT and SIGTERM are counted instead of raising.

    The first one is acted on by the waiting loop (which knows whether the run's loop exists yet); the
    second cancels the run and raises KeyboardInterrupt at once. A signal whose handler the application
    set itself is left alone; Python's defaults and asyncio.run's own SIGINT handler are replaced while
    we wait (the latter would only cancel the caller's task, which cannot run while we block it).
    """

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.count = 0
        self.installed = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
            try:
                current = signal.getsignal(sig)
                if current is default or _is_asyncio_runner_handler(current):
                    signal.signal(sig, self._on_signal)
                    self._previous[sig] = current
            except (AttributeError, ValueError, OSError):  # pragma: no cover - platform without the signal
                continue
        self.installed = signal.SIGINT in self._previous

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count > 1:
            self.run.cancel()
            raise KeyboardInterrupt

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            try:
                if signal.getsignal(sig) == self._on_signal:
                    signal.signal(sig, previous)
            except (ValueError, OSError):  # pragma: no cover
                pass
        self._previous.clear()
