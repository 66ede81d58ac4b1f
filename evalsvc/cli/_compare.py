"""`evalsvc compare BASE NEW`: each metric's change between two runs, whether it is beyond noise, and a gate."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.errors import ConfigError, EvalsvcError
from ..core.status import ExitCode
from ._common import fail


def _fmt(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+.4g}" if signed else f"{v:.4g}"


def compare(
    base: Annotated[str, typer.Argument(metavar="BASE", help="The baseline run: a directory or its summary.json.")],
    new: Annotated[str, typer.Argument(metavar="NEW", help="The run compared with it.")],
    fail_on: Annotated[str | None, typer.Option(
        "--fail-on", help="Comma-separated rules, e.g. 'ttft_ms.p99>+10%,request_throughput<-5%,gsm8k.score<-0.02'."
                          " Exit 1 when a change passes a threshold and is beyond noise.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    html: Annotated[str | None, typer.Option(
        "--html", metavar="PATH", help="Write the comparison page (both runs on the same charts) to PATH "
                                       "(default: compare.html in NEW's directory).")] = None,
    no_html: Annotated[bool, typer.Option("--no-html", help="Write no comparison page.")] = False,
) -> None:
    """Compare two perf runs (per sweep point) or two eval runs (per dataset); exit 1 when a --fail-on rule fails."""
    from ..core.report import compare as cmp

    try:
        rules = cmp.parse_rules(fail_on) if fail_on is not None else []
        result = cmp.compare(base, new)
        failures = result.gate(rules)
    except EvalsvcError as exc:
        fail(exc)
    page = None if no_html else _write_page(result, failures, html)
    failed_rows = {id(row) for _, row in failures}
    if as_json:
        data: dict[str, Any] = result.to_dict()
        data["failures"] = [{"rule": rule.text, "point": row.point, "metric": row.metric} for rule, row in failures]
        data["passed"] = not failures
        data["html"] = str(page) if page else None
        print(cmp.dumps(data))
    else:
        _print_table(result, failed_rows, failures)
        if page:
            print(f"comparison page: {page}")
    if failures:
        raise typer.Exit(code=ExitCode.FAILED)


def _write_page(result: Any, failures: list[Any], html: str | None) -> Path | None:
    """Write the page; an unwritable --html PATH exits 2, an unwritable default only warns (the gate decides)."""
    from ..core.report.compare import default_html_path

    path = Path(html) if html is not None else default_html_path(result.new)
    try:
        written: Path = result.write_html(path, failures)
    except OSError as exc:
        if html is not None:
            fail(ConfigError("--html", f"cannot write {html!r}: {exc.strerror or exc}"))
        print(f"evalsvc compare: warning: comparison page not written ({path}: {exc.strerror or exc}); "
              "--html PATH writes it elsewhere", file=sys.stderr)
        return None
    return written


def _print_table(result: Any, failed_rows: set[int], failures: list[Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # CI logs and pipes: wide enough that no column is cut
        console = Console(width=max(console.width, 160))
    table = Table(title=f"{result.kind} comparison: {escape(result.base)} -> {escape(result.new)}")
    for col in ("point", "metric", "base", "new", "change", "change %", "95% interval", "verdict"):
        table.add_column(col, justify="left" if col in ("point", "metric", "verdict") else "right")
    for row in result.rows:
        verdict = row.verdict
        if id(row) in failed_rows:
            verdict = "[bold red]REGRESSION[/] (" + verdict + ")"
        interval = "-" if row.ci_low is None else f"[{row.ci_low:+.4g}, {row.ci_high:+.4g}]"
        rel = "-" if row.rel_change is None else f"{row.rel_change * 100:+.1f}%"
        table.add_row(escape(row.point), escape(row.metric), _fmt(row.base), _fmt(row.new),
                      _fmt(row.change, signed=True), rel, interval, verdict)
    console.print(table)
    for key in result.only_base:
        console.print(f"only in BASE: {escape(key)}")
    for key in result.only_new:
        console.print(f"only in NEW: {escape(key)}")
    if not result.beyond_noise:
        console.print("no change beyond noise")
    for rule, row in failures:
        console.print(f"[bold red]FAILED[/] {escape(rule.text)}: {escape(row.point)} {escape(row.metric)} "
                      f"{_fmt(row.base)} -> {_fmt(row.new)}")


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
