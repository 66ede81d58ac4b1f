"""List the runs in an outputs directory: `list_runs(dir)` (and `evalsvc runs [DIR]`), newest first.

A run directory is one `evalsvc perf` or `evalsvc eval` wrote (`perf_<stamp>_<id>`, `eval_<stamp>_<id>`), or
any directory holding a summary.json, or a config.json of a perf or eval run (renamed or copied runs).
Directories below a run are its own (evalscope's per-dataset folders) and are not searched; other directories
are searched up to `MAX_DEPTH` levels, so `work_dir`s nested under the outputs root are found. A run whose
summary.json is missing or unreadable is listed with a DirState (`partial`, `unreadable`)
and the reason, never an exception.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from ..errors import ConfigError
from ..status import DirState

MAX_DEPTH = 4
"""How many directory levels below DIR are searched for runs."""
RUN_NAME = re.compile(r"^(?P<kind>perf|eval)_(?P<stamp>\d{8}_\d{6})_[0-9a-f]+$")
"""The name `new_run_dir` gives a run's directory (its stamp is the local time it started)."""

RunKind = Literal["perf", "eval", "unknown"]


@dataclass
class RunEntry:
    """One listed run: what it is, when, of which model, how it ended, and its key figures."""

    path: str
    kind: RunKind
    time: str | None
    """When it started, UTC ISO 8601 (summary.json's started_at; else the directory's name or mtime)."""
    model: str | None
    status: str
    """summary.json's RunStatus, or a DirState (`partial`, `unreadable`) when it cannot say."""
    error: str | None = None
    """The run's error, or why its directory could not be read."""
    points: int | None = None
    """perf: sweep points; requests, failed: over all points; the best request throughput of any point;
    the range of TTFT p50 over the points."""
    requests: int | None = None
    failed: int | None = None
    request_throughput_max: float | None = None
    ttft_p50_ms_min: float | None = None
    ttft_p50_ms_max: float | None = None
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    """eval: per dataset, its score, metric and requested / scored / errored samples."""
    sort_key: float = field(default=0.0, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("sort_key")
        return data


def list_runs(directory: str | os.PathLike[str] = "outputs") -> list[RunEntry]:
    """Every run under `directory` (or `directory` itself when it is a run), newest first.

    Raises:
        ConfigError: `directory` is not a directory.
    """
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError("DIR", f"{str(root)!r} is not a directory")
    found = [root] if _is_run_dir(root) else list(_find(root, MAX_DEPTH))
    entries = [read_entry(p) for p in found]
    entries.sort(key=lambda e: (e.sort_key, e.path), reverse=True)
    return entries


def _is_run_dir(path: Path) -> bool:
    """A run's directory by its name, its summary.json, or a config.json of a perf or an eval run."""
    if RUN_NAME.match(path.name) or (path / "summary.json").is_file():
        return True
    config, _ = _read(path / "config.json")
    inner = (config or {}).get("config")
    return config is not None and ("parallel" in config or (isinstance(inner, dict) and "datasets" in inner))


def _find(directory: Path, depth: int) -> list[Path]:
    out: list[Path] = []
    try:
        children = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return out
    for child in children:
        if child.name.startswith(".") or not child.is_dir(follow_symlinks=False):
            continue  # the service's private .evalsvc/, and links that could loop
        path = Path(child.path)
        try:
            is_run = _is_run_dir(path)
        except OSError:  # a directory we may not look into: listed, as unreadable
            is_run = bool(RUN_NAME.match(path.name))
        if is_run:
            out.append(path)
        elif depth > 1:
            out.extend(_find(path, depth - 1))
    return out


def _read(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the JSON object, None), or (None, why not); (None, None) when the file does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"{path.name}: {exc.strerror or exc}"
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, f"{path.name} is not valid JSON (cut short?)"
    if not isinstance(data, dict):
        return None, f"{path.name} is not a JSON object"
    return data, None


def _utc(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return when.timestamp()


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def read_entry(path: str | os.PathLike[str]) -> RunEntry:
    """What `list_runs` says of one run directory (never raises for what the directory holds)."""
    p = Path(path)
    name = RUN_NAME.match(p.name)
    summary, summary_error = _read(p / "summary.json")
    config, _ = _read(p / "config.json")
    config = config or {}
    inner = config.get("config")  # eval's config.json wraps its settings
    settings: dict[str, Any] = inner if isinstance(inner, dict) else config
    kind: RunKind = "unknown"
    if summary is not None and isinstance(summary.get("results"), dict):
        kind = "perf"
    elif summary is not None and isinstance(summary.get("result"), dict):
        kind = "eval"
    elif name:
        kind = name["kind"]  # type: ignore[assignment]
    elif "parallel" in settings:
        kind = "perf"
    elif "datasets" in settings:
        kind = "eval"
    raw_info = (summary or {}).get("info")
    info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
    started = (summary or {}).get("started_at") or info.get("started_at")
    when = _utc(started)
    if when is None and name:
        when = _dt.datetime.strptime(name["stamp"], "%Y%m%d_%H%M%S").timestamp()  # local time, as written
    if when is None:
        try:
            when = p.stat().st_mtime
        except OSError:
            when = 0.0
    model = (summary or {}).get("model") or info.get("model") or settings.get("model")
    entry = RunEntry(path=str(p), kind=kind, time=_iso(when) if when else None,
                     model=str(model) if model is not None else None, status=DirState.PARTIAL, sort_key=when)
    if summary is None:
        entry.status = DirState.UNREADABLE if summary_error else DirState.PARTIAL
        entry.error = summary_error or "no summary.json: the run is still going, or stopped before writing it"
        return entry
    if kind == "unknown" or ("results" not in summary and "result" not in summary):
        entry.status = DirState.UNREADABLE
        entry.error = "summary.json holds neither perf results nor eval results"
        return entry
    entry.status = str(summary.get("status") or DirState.UNREADABLE)
    entry.error = summary.get("error") if isinstance(summary.get("error"), str) else None
    if kind == "perf":
        points = [r.get("metrics") or {} for r in summary["results"].values() if isinstance(r, dict)]
        entry.points = len(points)
        entry.requests = sum(int(m.get("requests_total") or 0) for m in points)
        entry.failed = sum(int(m.get("requests_failed") or 0) for m in points)
        rates = [x for m in points if (x := _num(m.get("request_throughput"))) is not None]
        ttfts = [x for m in points if (x := _num(m.get("ttft_ms_p50"))) is not None]
        entry.request_throughput_max = max(rates) if rates else None
        entry.ttft_p50_ms_min, entry.ttft_p50_ms_max = (min(ttfts), max(ttfts)) if ttfts else (None, None)
    else:
        for ds, d in summary["result"].items():
            d = d if isinstance(d, dict) else {}
            entry.datasets[str(ds)] = {k: d.get(k) for k in ("score", "metric", "requested", "scored", "errored")}
    return entry
