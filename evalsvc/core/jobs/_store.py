"""Jobs persisted in SQLite under the outputs root, so history survives a restart of the service."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson

from .._io import dumps, utc_now_iso
from ._model import ACTIVE_STATES, INTERRUPTED, Job

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
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
"""
_COLUMNS = ("id", "kind", "state", "created_at", "started_at", "finished_at", "config", "progress",
            "output_dir", "result", "error")
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

    def delete(self, job_id: str) -> bool:
        """Remove the job's row; False if there was none."""
        with self._lock:
            return self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount > 0

    def finished_before(self, cutoff: str, limit: int = 1000) -> list[Job]:
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

    def recover(self) -> list[str]:
        """Mark jobs left queued or running by a previous service process as interrupted; return their ids.

        Nothing can still be running them: their worker processes stop when the service that started
        them goes away, and a queued job's API key only ever lived in that service's memory.
        """
        now = utc_now_iso()
        error = dumps({"type": "Interrupted",
                       "message": "the service stopped while this job was queued or running"}, indent=False).decode()
        marks = ", ".join("?" * len(ACTIVE_STATES))
        with self._lock:
            ids = [r[0] for r in self._db.execute(f"SELECT id FROM jobs WHERE state IN ({marks})", ACTIVE_STATES)]
            self._db.execute(
                f"UPDATE jobs SET state = ?, finished_at = COALESCE(finished_at, ?), error = COALESCE(error, ?) "
                f"WHERE state IN ({marks})", (INTERRUPTED, now, error, *ACTIVE_STATES))
        return ids


def _job(row: tuple[Any, ...]) -> Job:
    data = dict(zip(_COLUMNS, row))
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
