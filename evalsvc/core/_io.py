"""Output files: atomic writes, JSON that is always valid, run directories.

Files are created with mode 0666 less the process umask, as `open()` and evalscope's files beside them
are (0644 under the usual umask 022); a caller that keeps something private passes `mode=0o600`.
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

_JSON_OPTS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(obj: Any, *, indent: bool = True) -> bytes:
    """JSON bytes; NaN and infinities become null (orjson's rule), never the invalid bare NaN."""
    return orjson.dumps(obj, option=_JSON_OPTS if indent else orjson.OPT_NON_STR_KEYS, default=str)


def create_beside(path: Path, mode: int) -> tuple[int, str]:
    """Create a new, empty temporary file next to `path`; the umask applies to `mode` (mkstemp forces 0600)."""
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode), tmp
        except FileExistsError:
            continue


def write_atomic(path: str | os.PathLike[str], data: bytes | str, *, mode: int = 0o666) -> Path:
    """Write to a temporary file beside `path`, fsync, then rename: readers see all of it or nothing.

    The file gets `mode` less the umask (0644 under umask 022), like a file written with `open()`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = create_beside(path, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def write_json(path: str | os.PathLike[str], obj: Any, *, mode: int = 0o666) -> Path:
    return write_atomic(path, dumps(obj) + b"\n", mode=mode)


class AtomicLines:
    """A JSONL file written in batches to a temporary name and renamed into place by `close()`.

    Its mode is `mode` less the umask, as for `write_atomic`.
    """

    def __init__(self, path: str | os.PathLike[str], *, mode: int = 0o666) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = create_beside(self.path, mode)
        self._fh = os.fdopen(fd, "wb", buffering=1 << 16)
        self.count = 0

    def write_many(self, rows: Iterable[Any]) -> None:
        dump = orjson.dumps
        fh = self._fh
        for row in rows:
            fh.write(dump(row))
            fh.write(b"\n")
            self.count += 1

    def copy_from(self, src: Any) -> None:
        """Append the raw JSONL content of an open binary file."""
        import shutil

        shutil.copyfileobj(src, self._fh)

    def close(self) -> Path:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self._tmp, self.path)
        return self.path

    def discard(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass


def new_run_dir(work_dir: str | os.PathLike[str], prefix: str = "") -> Path:
    """A fresh `<work_dir>/<prefix><YYYYmmdd_HHMMSS>_<rand>` directory (unique even within one second)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d_%H%M%S")
    root = Path(work_dir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    while True:
        path = root / f"{prefix}{stamp}_{secrets.token_hex(3)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def utc_now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
