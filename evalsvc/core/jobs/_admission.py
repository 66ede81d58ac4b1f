"""Admission: which job waits, which starts, which is refused: a bounded FIFO queue and per-kind limits.

A job starts at once when its kind has a free slot and none of its kind waits before it; otherwise it
waits, unless `max_queued` jobs already wait (QueueFull: HTTP 429). Loop thread only; no I/O.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ._model import KINDS, SLOT, QueueFull


class Admission:
    """The queue and the running counts of the job runner."""

    def __init__(self, max_queued: int, limits: dict[str, int]) -> None:
        if max_queued < 0 or any(n < 1 for n in limits.values()):
            raise ValueError("max_queued must be >= 0 and concurrency limits >= 1")
        self.max_queued = max_queued
        self.limits = dict(limits)
        self.running = {kind: 0 for kind in KINDS}  # by kind; a kind's limit is its slot's (SLOT)
        self._queue: deque[tuple[str, str]] = deque()  # (job id, kind)

    def admit(self, job_id: str, kind: str) -> None:
        """Queue a job (`take()` says when it may start).

        Raises:
            QueueFull: `max_queued` jobs already wait and this one could not start at once.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown job kind {kind!r}")
        waiting = len(self._queue)
        if waiting >= self.max_queued and not self._has_slot(kind):
            raise QueueFull(waiting, self.max_queued)
        self._queue.append((job_id, kind))

    def take(self) -> list[str]:
        """The queued jobs that may start now, in queue order; each counts as running from here on."""
        started = []
        for job_id, kind in list(self._queue):
            if self._used(kind) < self.limits[SLOT[kind]]:
                self._queue.remove((job_id, kind))
                self.running[kind] += 1
                started.append(job_id)
        return started

    def withdraw(self, job_id: str) -> bool:
        """Take a job out of the queue (cancelled, or the service stops); False if it was not queued."""
        for entry in self._queue:
            if entry[0] == job_id:
                self._queue.remove(entry)
                return True
        return False

    def release(self, kind: str) -> None:
        """A running job of `kind` has finished."""
        self.running[kind] -= 1

    def queued(self) -> list[str]:
        return [job_id for job_id, _ in self._queue]

    def stats(self) -> dict[str, Any]:
        return {"queued": len(self._queue), "running": sum(self.running.values()),
                "running_by_kind": dict(self.running), "max_queued": self.max_queued,
                "concurrency": dict(self.limits)}

    def _has_slot(self, kind: str) -> bool:
        return self._used(kind) < self.limits[SLOT[kind]] and not any(SLOT[k] == SLOT[kind] for _, k in self._queue)

    def _used(self, kind: str) -> int:
        """Jobs running in `kind`'s slot (perf and capacity share one)."""
        return sum(n for k, n in self.running.items() if SLOT[k] == SLOT[kind])
