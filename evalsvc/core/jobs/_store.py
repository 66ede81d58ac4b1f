"""Jobs persisted in SQLite under the outputs root, so history survives a restart of the service.

`JobStore` is the table (blocking calls); `StoreThread` is how the event loop uses it: on one writer
thread, with the outputs root's service lock held while it is open.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from .._io import dumps, utc_now_iso, write_json
from ._model import ACTIVE_STATES, INTERRUPTED, Job, RunnerClosed, RunnerLocked
from ._outcome import interrupted_error

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    config TEXT NOT NULL,
    progress TEXT NOT NULL,
    output_dir TEXT,
    result TEXT,
    error TEXT,
    request_id TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
"""
log = logging.getLogger("evalsvc.jobs")

_COLUMNS = ("id", "kind", "state", "created_at", "started_at", "finished_at", "config", "progress",
            "output_dir", "result", "error", "request_id")
_JSON_COLUMNS = {"config", "progress", "result", "error"}


class JobStore:
    """A small thread-safe job table. Calls block (briefly); the runner makes them from one writer thread.

    Args:
        path: the database file; its directory is created.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # 0600 before SQLite opens it: its -wal and -shm files are created with the database's mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f"{self.path}{suffix}", 0o600)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives a crash of the process (what a kill -9 of the service is);
        # only a power loss may drop the last transactions.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        if "request_id" not in columns:  # a database written before request ids were kept
            self._db.execute("ALTER TABLE jobs ADD COLUMN request_id TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(self, job: Job) -> None:
        """Insert or replace the whole row for `job`."""
        row = job.to_dict()
        values = [dumps(row[c], indent=False).decode() if c in _JSON_COLUMNS and row[c] is not None else row[c]
                  for c in _COLUMNS]
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                values)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def list(self, *, state: str | None = None, kind: str | None = None, limit: int = 50,
             offset: int = 0) -> list[Job]:
        """Jobs newest first, without their result payloads (`has_result` tells whether there is one)."""
        where, args = _filters(state, kind)
        cols = [c if c != "result" else "CASE WHEN result IS NULL THEN NULL ELSE '{}' END" for c in _COLUMNS]
        sql = f"SELECT {', '.join(cols)} FROM jobs{where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        with self._lock:
            rows = self._db.execute(sql, [*args, limit, offset]).fetchall()
        return [_job(r) for r in rows]

    def count(self, *, state: str | None = None, kind: str | None = None) -> int:
        where, args = _filters(state, kind)
        sql = f"SELECT COUNT(*) FROM jobs{where}"
        with self._lock:
            return int(self._db.execute(sql, args).fetchone()[0])

    def counts(self) -> builtins.list[tuple[str, str, int]]:
        """(kind, state, number of jobs) for every kind and state that has jobs."""
        with self._lock:
            rows = self._db.execute("SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state").fetchall()
        return [(str(k), str(s), int(n)) for k, s, n in rows]

    def delete(self, job_id: str) -> bool:
        """Remove the job's row; False if there was none."""
        with self._lock:
            return self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount > 0

    def finished_before(self, cutoff: str, limit: int = 1000) -> builtins.list[Job]:
        """Finished jobs whose finished_at (ISO, UTC) is before `cutoff`, oldest first."""
        marks = ", ".join("?" * len(ACTIVE_STATES))
        sql = (f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE state NOT IN ({marks}) AND finished_at IS NOT NULL "
               "AND finished_at < ? ORDER BY finished_at LIMIT ?")
        with self._lock:
            rows = self._db.execute(sql, (*ACTIVE_STATES, cutoff, limit)).fetchall()
        return [_job(r) for r in rows]

    def output_dir_used_by_others(self, output_dir: str, job_id: str) -> bool:
        """Whether another job records the same output directory (an eval resumed with use_cache)."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM jobs WHERE output_dir = ? AND id != ? LIMIT 1",
                                    (output_dir, job_id)).fetchone() is not None

    def recover(self) -> builtins.list[str]:  # `list` here is the method above
        """Mark jobs left queued or running by a previous service process as interrupted; return their ids.

        Nothing can still be running them: their worker processes stop when the service that started
        them goes away, and a queued job's API key only ever lived in that service's memory.
        """
        now = utc_now_iso()
        error = dumps(interrupted_error("queued or running"), indent=False).decode()
        marks = ", ".join("?" * len(ACTIVE_STATES))
        with self._lock:
            ids = [r[0] for r in self._db.execute(f"SELECT id FROM jobs WHERE state IN ({marks})", ACTIVE_STATES)]
            self._db.execute(
                f"UPDATE jobs SET state = ?, finished_at = COALESCE(finished_at, ?), error = COALESCE(error, ?) "
                f"WHERE state IN ({marks})", (INTERRUPTED, now, error, *ACTIVE_STATES))
        return ids


class StoreThread:
    """The job store for an event loop: every call runs on one writer thread, in order, so a read sees
    the writes queued before it. While open it holds the outputs root's service lock.

    Args:
        state_dir: the outputs root's `.evalsvc/` (database, lock file).
        outputs_root: job.json files are written only inside it.
    """

    def __init__(self, state_dir: Path, outputs_root: Path) -> None:
        self.state_dir = state_dir
        self.outputs_root = outputs_root
        self._store: JobStore | None = None
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock_fd: int | None = None

    def check_unlocked(self) -> None:
        """Raise RunnerLocked now if another live service holds this outputs root."""
        private_dir(self.state_dir)
        os.close(lock_root(self.state_dir / "service.lock", write_pid=False))

    async def open(self) -> list[str]:
        """Lock the outputs root, open the database, mark jobs a previous process left active interrupted.

        Returns:
            The ids of the jobs marked interrupted.

        Raises:
            RunnerLocked: another live service uses the same outputs root.
        """
        self._loop = asyncio.get_running_loop()
        private_dir(self.state_dir)
        self._lock_fd = lock_root(self.state_dir / "service.lock")
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="evalsvc-jobstore")
        try:
            self._store = await self.run(JobStore, self.state_dir / "jobs.sqlite3")
            recovered: list[str] = await self.run(self._store.recover)
        except BaseException:
            self._writer.shutdown(wait=False)
            os.close(self._lock_fd)
            self._lock_fd = None
            raise
        return recovered

    def run(self, func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """`func(*args)` on the writer thread, after everything queued before it."""
        assert self._loop is not None and self._writer is not None
        return self._loop.run_in_executor(self._writer, func, *args)

    @property
    def store(self) -> JobStore:
        if self._store is None:
            raise RunnerClosed()
        return self._store

    def put(self, job: Job) -> asyncio.Future[None]:
        """Write a snapshot of `job` (a deep copy: the caller keeps changing the live one)."""
        future = self.run(self.store.put, Job(**job.to_dict()))
        future.add_done_callback(_log_failure)
        return future

    def write_job_file(self, job: Job) -> None:
        """job.json in the job's output directory, if that lies inside the outputs root."""
        path = Path(job.output_dir or "")
        if not path.is_absolute():
            return
        try:
            inside = path.resolve().is_relative_to(self.outputs_root)
        except (OSError, ValueError):
            return
        if inside:
            self.run(write_job_json, path / "job.json", job.to_dict()).add_done_callback(_log_failure)

    async def get(self, job_id: str) -> Job | None:
        job: Job | None = await self.run(self.store.get, job_id)
        return job

    async def list(self, *, state: str | None, kind: str | None, limit: int,
                   offset: int) -> tuple[list[Job], int]:
        """A page of jobs and how many match in all (read together on the writer thread)."""
        store = self.store
        page: tuple[list[Job], int] = await self.run(
            lambda: (store.list(state=state, kind=kind, limit=limit, offset=offset),
                     store.count(state=state, kind=kind)))
        return page

    async def close(self) -> None:
        """Finish every queued write, close the database, unlock."""
        if self._store is None or self._writer is None:
            return
        await self.run(lambda: None)
        store, self._store = self._store, None
        store.close()
        self._writer.shutdown(wait=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _log_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("job store write failed", exc_info=future.exception())


def _job(row: tuple[Any, ...]) -> Job:
    data = dict(zip(_COLUMNS, row, strict=True))
    for column in _JSON_COLUMNS:
        if data[column] is not None:
            data[column] = orjson.loads(data[column])
    return Job(**data)


def _filters(state: str | None, kind: str | None) -> tuple[str, list[str]]:
    """The WHERE clause (or "") and its arguments for the optional state and kind filters."""
    clauses, args = [], []
    for column, value in (("state", state), ("kind", kind)):
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def private_dir(path: Path) -> None:
    """Create `path` (and its parents) if needed; the directory itself is readable by this user only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def lock_root(path: Path, *, write_pid: bool = True) -> int:
    """Take the service lock file `path` (its descriptor: held while the service runs).

    Raises:
        RunnerLocked: another live service holds it.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunnerLocked(f"another evalsvc service already runs jobs from {path.parent.parent}; "
                           "stop it or give this one another outputs root") from None
    if write_pid:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def write_job_json(path: Path, data: dict[str, Any]) -> None:
    """job.json beside a job's outputs (if its directory still exists)."""
    if path.parent.is_dir():
        write_json(path, data)
