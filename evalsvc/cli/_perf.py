"""`evalsvc perf`: flags -> PerfConfig -> run_perf -> a live progress bar and a table per run."""

from __future__ import annotations

import inspect
import sys
from typing import Annotated, Any

import typer

from ..core.config import PerfConfig
from ..core.errors import EvalsvcError
from ..core.status import RunStatus
from ._common import fail
from ._options import config_parameters, config_values


def perf(**options: Any) -> None:
    """Load-test an LLM endpoint: TTFT, TPOT, ITL, latency and throughput under concurrency or rate."""
    json_out = options.pop("json_out", False)
    verbose = options.pop("verbose", False)
    try:
        config = PerfConfig(**config_values(PerfConfig, options))
        result = _run(config, quiet=json_out)
    except EvalsvcError as exc:
        fail(exc)
    if json_out:
        from ..core._io import dumps

        sys.stdout.write(dumps(result.to_dict()).decode() + "\n")
    else:
        from ._render import print_perf

        print_perf(result, verbose=verbose)
    if result.exit_code:  # the one table (evalsvc.core.status.EXIT_CODE), shared with `evalsvc eval`
        if result.error and result.status == RunStatus.FAILED:
            print(f"evalsvc perf: failed: {result.error}", file=sys.stderr)
        raise typer.Exit(code=result.exit_code)


# One option per PerfConfig field, generated from its declaration (evalsvc/cli/_options.py), then --json.
perf.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
    *config_parameters(PerfConfig),
    inspect.Parameter("json_out", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
        bool, typer.Option("--json", help="Print the result object as JSON (for scripts).")]),
    inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
        bool, typer.Option("--verbose", "-v", help="A sweep: each point's detail table too, after the sweep "
                                                   "table (one row per point).")]),
])


def _run(config: Any, *, quiet: bool) -> Any:
    from ..core.perf import run_perf

    if quiet or not sys.stderr.isatty():
        return run_perf(config, progress=_plain_progress(config) if not quiet else None)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    bars: dict[str, Any] = {}
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rps]:>8.1f} req/s"), TextColumn("failed {task.fields[failed]}"),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        def progress(event: Any) -> None:
            if event.get("type") != "progress":
                return
            key = event["part"]
            if key not in bars:
                bars[key] = bar.add_task(key, total=event["total"], rps=0.0, failed=0)
            bar.update(bars[key], completed=event["done"], rps=event["rps"], failed=event["failed"])

        return run_perf(config, progress=progress)


def _plain_progress(config: Any) -> Any:
    """Without a terminal (CI logs): one line per run every few seconds instead of a redrawn bar."""
    import time

    last = [0.0]

    def progress(event: Any) -> None:
        now = time.monotonic()
        if event.get("type") == "progress" and now - last[0] >= 5.0:
            last[0] = now
            print(f"[{event['part']}] {event['done']}/{event['total']} done, {event['failed']} failed, "
                  f"{event['rps']:.1f} req/s", file=sys.stderr, flush=True)

    return progress


def register(app: typer.Typer) -> None:
    app.command("perf")(perf)
