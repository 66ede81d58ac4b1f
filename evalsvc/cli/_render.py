"""Console rendering of perf results (rich); the rows themselves come from core (perf/_result.py)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..core.perf._result import summary_lines, sweep_notes, sweep_table
from ..core.status import RunStatus


def table_console() -> Console:
    """The console result tables are printed on: the terminal's, or for pipes and CI logs one wide enough that
    no column is cut."""
    console = Console()
    return console if console.is_terminal else Console(width=max(console.width, 160))


def print_perf(result: Any, console: Console | None = None, *, verbose: bool = False) -> None:
    """A sweep: one table, a row per point (and its notes); one point, or `verbose`: each point's detail."""
    if console is None:
        console = table_console()
    if len(result.results) > 1:
        headers, rows = sweep_table(result.results)
        table = Table(title="sweep (times in ms)", title_justify="left", box=box.SIMPLE_HEAD,
                      collapse_padding=True)
        for i, title in enumerate(headers):  # two-line headers keep the table narrow
            table.add_column(title if i == 0 else title.replace(" ", "\n", 1), justify="left" if i == 0 else "right",
                             no_wrap=i == 0, overflow="fold")
        for cells in rows:
            table.add_row(*map(escape, cells), style="yellow" if cells[-1] == "YES" else None)
        console.print(table)
        for note in sweep_notes(result.results):
            console.print(escape(note), style="yellow" if note.startswith("WARNING") else None, soft_wrap=True)
    if len(result.results) == 1 or verbose:
        for key, run in result.results.items():
            table = Table(title=key, show_header=False, title_justify="left")
            table.add_column("metric", style="bold")
            table.add_column("value")
            for label, value in summary_lines(run.metrics):
                table.add_row(label, value, style="yellow" if label == "WARNING" else None)
            console.print(table)
    status = escape(str(result.status))
    if result.status != RunStatus.COMPLETED:
        status = f"[red]{status}[/red]" + (f" ({escape(result.error)})" if result.error else "")
    console.print(f"{status}; outputs in [bold]{escape(result.output_dir)}[/bold]", soft_wrap=True)
