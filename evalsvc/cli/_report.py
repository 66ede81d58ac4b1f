"""`evalsvc report DIR`: (re)build report.html from the files a run wrote into DIR."""

from __future__ import annotations

from typing import Annotated

import typer

from ..core.errors import EvalsvcError
from ._common import fail


def report(
    run_dir: Annotated[str, typer.Argument(metavar="DIR", help="A perf or eval run's output directory.")],
) -> None:
    """Build report.html (charts, opens offline) from a run directory's files; prints its path."""
    from ..core.report import build_report

    try:
        path = build_report(run_dir)
    except EvalsvcError as exc:
        fail(exc)
    print(path)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
