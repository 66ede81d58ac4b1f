"""`evalsvc capacity`: flags -> CapacityConfig -> run_capacity -> a line per probe while it runs, one table."""

from __future__ import annotations

import inspect
import sys
from typing import Annotated, Any

import typer

from ..core.config import CapacityConfig
from ..core.errors import EvalsvcError
from ..core.status import RunStatus
from ._common import fail
from ._options import config_parameters, config_values


def capacity(**options: Any) -> None:
    """Find the most load (concurrency or arrival rate) an endpoint takes while meeting its SLOs."""
    json_out = options.pop("json_out", False)
    try:
        config = CapacityConfig(**config_values(CapacityConfig, options))
        from ..core.capacity import run_capacity

        result = run_capacity(config, progress=None if json_out else _progress)
    except EvalsvcError as exc:
        fail(exc)
    if json_out:
        from ..core._io import dumps

        sys.stdout.write(dumps(result.to_dict()).decode() + "\n")
    else:
        print_capacity(result)
    if result.exit_code:
        if result.error and result.status == RunStatus.FAILED:
            print(f"evalsvc capacity: failed: {result.error}", file=sys.stderr)
        raise typer.Exit(code=result.exit_code)


capacity.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
    *config_parameters(CapacityConfig),
    inspect.Parameter("json_out", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
        bool, typer.Option("--json", help="Print the result object as JSON (for scripts).")]),
])


def _progress(event: Any) -> None:
    """One line per probe run and per value judged, on stderr (a search is a few dozen lines at most)."""
    kind = event.get("type")
    if kind == "run_done":
        m = event["metrics"]
        att = m.get("slo_attainment")
        print(f"[capacity] {event['part']}: {m['requests_succeeded']}/{m['requests_total']} ok, attainment "
              f"{'-' if att is None else f'{att:.3f}'}" + (f", stopped by {m['stopped_by']}" if m.get("stopped_by")
                                                          else "")
              + (" (client-bound)" if m.get("client_bound") else ""), file=sys.stderr, flush=True)
    elif kind == "probe":
        lo, hi = event["interval"]
        print(f"[capacity] {event['value']:g}: {event['verdict']} by {event['decided_by']} (interval [{lo:.3f}, "
              f"{hi:.3f}]); passing {_g(event['last_pass'])}, failing {_g(event['first_fail'])}",
              file=sys.stderr, flush=True)


def _g(value: Any) -> str:
    return "-" if value is None else f"{value:g}"


def print_capacity(result: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ..core.capacity._result import PROBE_COLUMNS, probe_rows
    from ._render import table_console

    console = table_console()
    table = Table(title="capacity search: one row per probe run", title_justify="left")
    for i, column in enumerate(PROBE_COLUMNS):
        table.add_column(column, no_wrap=i == 0)
    for row in probe_rows(result.capacity, result.results):
        style = "green" if row[5] == "pass" else "red" if row[5].startswith("fail") else \
            "yellow" if row[5] == "client-bound" else None
        table.add_row(*row, style=style)
    console.print(table)
    console.print(escape(str(result.capacity.get("message", ""))), soft_wrap=True)
    status = escape(str(result.status))
    if result.status != RunStatus.COMPLETED:
        status = f"[red]{status}[/red]"
    console.print(f"{status}; outputs in [bold]{escape(result.output_dir)}[/bold]", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("capacity")(capacity)
