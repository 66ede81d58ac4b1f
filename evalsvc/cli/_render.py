"""Console rendering of perf results (rich); the rows themselves come from core."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..core.perf._result import summary_lines
from ..core.status import RunStatus


def print_perf(result: Any, console: Console | None = None) -> None:
    console = console or Console()
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
