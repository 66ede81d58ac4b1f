"""`evalsvc runs [DIR]`: the runs in an outputs directory, newest first (core: evalsvc.core.report.runs)."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from ..core.errors import EvalsvcError
from ._common import fail


def _g(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def figures(entry: Any) -> str:
    """The key figures of a listed run, in one cell."""
    if entry.kind == "perf" and entry.points is not None:
        parts = [f"{entry.points} point{'s' if entry.points != 1 else ''}",
                 f"{entry.requests} req" + (f" ({entry.failed} failed)" if entry.failed else ""),
                 f"best {_g(entry.request_throughput_max, 2)} req/s"]
        if entry.ttft_p50_ms_min is not None:
            lo, hi = entry.ttft_p50_ms_min, entry.ttft_p50_ms_max
            parts.append(f"TTFT p50 {_g(lo)}" + (f"-{_g(hi)}" if hi is not None and hi != lo else "") + " ms")
        return " · ".join(parts)
    if entry.kind == "eval" and entry.datasets:
        cells = []
        for name, d in entry.datasets.items():
            score = d.get("score")
            text = f"{name} {score:.4f}" if isinstance(score, (int, float)) else f"{name} -"
            counts = f"{d.get('scored')}/{d.get('requested')}"
            if d.get("errored"):
                counts += f", {d['errored']} errored"
            cells.append(f"{text} ({counts})")
        return ", ".join(cells)
    return entry.error or ""


def runs(
    directory: Annotated[str, typer.Argument(metavar="DIR", help="An outputs directory (searched below too).")]
    = "outputs",
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List the perf and eval runs in DIR, newest first: kind, time, model, status, key figures, path."""
    from ..core._io import dumps
    from ..core.report.runs import list_runs

    try:
        entries = list_runs(directory)
    except EvalsvcError as exc:
        fail(exc)
    if as_json:
        print(dumps({"dir": directory, "runs": [e.to_dict() for e in entries]}).decode())
        return
    if not entries:
        print(f"no runs in {directory}")
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # pipes and CI logs: wide enough that no column is cut
        console = Console(width=max(console.width, 180))
    table = Table(title=f"runs in {escape(directory)} (newest first)", title_justify="left")
    for col in ("time (UTC)", "kind", "model", "status", "figures", "path"):
        table.add_column(col, overflow="fold", no_wrap=col in ("time (UTC)", "path"))
    for e in entries:
        status = escape(e.status)
        if e.status not in ("completed",):
            status = f"[yellow]{status}[/yellow]"
        path = os.path.relpath(e.path, directory) if e.path != directory else e.path
        table.add_row((e.time or "-").replace("T", " ").rstrip("Z"), e.kind, escape(e.model or "-"), status,
                      escape(figures(e)), escape(path))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("runs")(runs)
