"""`evalsvc eval` (accuracy on benchmarks, live progress per dataset) and `evalsvc benchmarks`."""

from __future__ import annotations

import inspect
import os
import sys
from typing import Annotated, Any

import typer

from ..core.config import JUDGE_API_KEY_ENV, EvalConfig
from ._common import fail
from ._options import config_parameters, config_values


def eval_command(names: list[str] | None = None, json_output: bool = False, quiet: bool = False,
                 **options: Any) -> None:
    """Evaluate a served model's accuracy on benchmarks (gsm8k, iquiz, ceval, mmlu, ...).

    Each dataset runs in its own worker process, several at once; Ctrl-C stops the run and keeps
    what was done, and --use-cache resumes it.
    """
    from ..core.errors import ConfigError, EvalsvcError

    try:
        options["datasets"] = [*(options.get("datasets") or []), *(names or [])]
        if not options["datasets"]:
            raise ConfigError("datasets",
                              "name at least one benchmark (--datasets gsm8k ...; see `evalsvc benchmarks`)")
        values = config_values(EvalConfig, options)
        judge = values.get("judge")
        if isinstance(judge, dict) and not judge.get("api_key") and os.environ.get(JUDGE_API_KEY_ENV):
            # the judge's key need not sit in a JSON argument that `ps` shows
            values["judge"] = {**judge, "api_key": os.environ[JUDGE_API_KEY_ENV]}
        config = EvalConfig(**values)
        result = _run(config, show_progress=not quiet, debug=config.debug)
    except EvalsvcError as exc:
        fail(exc)
    _report(result, json_output)


# The positional benchmark names, one option per EvalConfig field (and the generation_config shortcuts
# --temperature / --max-tokens), generated from their declarations (evalsvc/cli/_options.py), then --json, -q.
eval_command.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
    inspect.Parameter("names", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
        list[str] | None, typer.Argument(metavar="[DATASETS]...", show_default=False,
                                            help="Benchmarks to evaluate (same as --datasets).")]),
    *config_parameters(EvalConfig),
    inspect.Parameter("json_output", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
        bool, typer.Option("--json", help="Print the result as JSON on stdout.")]),
    inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars.")]),
])


def _run(config: Any, *, show_progress: bool, debug: bool) -> Any:
    import asyncio

    from rich.console import Console

    from ..core._aio import run_blocking
    from ..core.eval import run_eval_async

    console = Console(stderr=True)
    view = _ProgressView(console, config.datasets, debug=debug) if show_progress else None

    def on_interrupt() -> None:
        console.print("[yellow]Cancelling: stopping the workers (Ctrl-C again to force)...[/]")

    cancel = asyncio.Event()
    run = run_eval_async(config, progress=view.handle if view else None, cancel=cancel)
    if view is None:
        return run_blocking(run, stop=cancel, on_interrupt=on_interrupt, name="evalsvc-eval")
    with view:
        return run_blocking(run, stop=cancel, on_interrupt=on_interrupt, name="evalsvc-eval")


class _ProgressView:
    """One live progress bar per dataset, on stderr; warnings and errors printed above the bars."""

    _MAX_ERRORS_SHOWN = 3

    def __init__(self, console: Any, datasets: list[str], *, debug: bool) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = console
        self.debug = debug
        self.progress = Progress(
            TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[state]}"), console=console, transient=False,
        )
        self.tasks = {name: self.progress.add_task(name, total=None, state="waiting", start=False)
                      for name in datasets}
        self.errors_shown: dict[str, int] = {}
        self.started = False

    def __enter__(self) -> _ProgressView:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started:
            self.progress.stop()

    def handle(self, event: Any) -> None:
        from ..core.status import Phase, RunStatus

        kind = event.get("type")
        if kind == "status" and not self.started:  # bars appear once work starts, not before a config error
            self.started = True
            self.progress.start()
        name = event.get("part")
        task = self.tasks.get(name) if name else None
        if kind == "progress" and task is not None:
            self.progress.update(task, total=event.get("total") or None, completed=event.get("done", 0),
                                 state="running")
        elif kind == "status" and task is not None:
            status = event.get("status")
            if status == Phase.STARTING:
                self.progress.start_task(task)
                self.progress.update(task, state="resuming" if event.get("resume") else "starting")
            else:
                mark = {RunStatus.COMPLETED: "[green]done[/]", RunStatus.FAILED: "[red]failed[/]"}.get(
                    status, f"[yellow]{status}[/]")
                self.progress.update(task, state=mark)
                self.progress.stop_task(task)
        elif kind == "log":
            self._log(name, str(event.get("level", "INFO")), str(event.get("message", "")))

    def _log(self, name: str | None, level: str, message: str) -> None:
        from rich.markup import escape

        if level in ("ERROR", "CRITICAL"):
            count = self.errors_shown.get(name or "", 0) + 1
            self.errors_shown[name or ""] = count
            if count > self._MAX_ERRORS_SHOWN and not self.debug:
                if count == self._MAX_ERRORS_SHOWN + 1:
                    self.console.print(f"[red]{name}: more errors; see the result and its log[/]")
                return
            self.console.print(f"[red]{escape(name or 'eval')}: {escape(message.splitlines()[0][:300])}[/]")
        elif level == "WARNING" or self.debug:
            style = "yellow" if level == "WARNING" else "dim"
            self.console.print(f"[{style}]{escape(name or 'eval')}: {escape(message.splitlines()[0][:300])}[/]")


def _report(result: Any, json_output: bool) -> None:
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True)
    if json_output:
        from ..core._io import dumps

        sys.stdout.write(dumps(result.to_dict()).decode() + "\n")
    else:
        out = Console()
        out.print(result)
        for d in result.datasets.values():
            if len(d.subsets) > 1:
                out.print(_subset_table(d))
        if result.output_dir:
            out.print(f"Output: {result.output_dir}", soft_wrap=True)
    from ..core.status import STOPPED, RunStatus

    if result.status in STOPPED and result.output_dir:
        err.print(f"[yellow]{result.status.capitalize()}: the predictions made so far are kept. Resume with the same "
                  f"options plus:[/] --use-cache {escape(result.output_dir)}", soft_wrap=True)
    elif result.status in (RunStatus.INCOMPLETE, RunStatus.FAILED):
        # One line a CI log shows: which datasets fell short and how many samples errored.
        style = "yellow" if result.status == RunStatus.INCOMPLETE else "red"
        err.print(f"[{style}]{result.status.capitalize()}: {escape(result.error or result.status)}[/]", soft_wrap=True)
    # Only a complete run exits 0: a pipeline gating on the exit code must not pass a run with errored samples.
    # The one table (evalsvc.core.status.EXIT_CODE), shared with `evalsvc perf`.
    if result.exit_code:
        raise typer.Exit(code=result.exit_code)


def _subset_table(d: Any) -> Any:
    from rich.table import Table

    table = Table(title=f"{d.name} by subset", title_justify="left")
    for col in ("subset", "score", "scored", "errored"):
        table.add_column(col, justify="left" if col == "subset" else "right")
    for name, sub in d.subsets.items():
        score = sub.get("score")
        table.add_row(name, "—" if score is None else f"{score:.4f}", str(sub.get("scored", "")),
                      str(sub.get("errored", 0)))
    return table


def benchmarks_command(
    search: Annotated[str | None, typer.Argument(
        help="Only benchmarks whose name, tags or description contain this text.", show_default=False)] = None,
    show_all: Annotated[bool, typer.Option(
        "--all", help="Also list the benchmarks that cannot run as installed, each with the reason (an optional "
        "package, docker, multimodal, agent).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List the benchmarks evalsvc can evaluate as installed, from evalscope's catalogue."""
    from ..core.eval import list_benchmarks

    everything = list_benchmarks(include_unsupported=True)
    if search:
        needle = search.lower()
        everything = [e for e in everything if needle in " ".join(
            [e["name"], e["pretty_name"], e["description"], *e["tags"]]).lower()]
    runnable = [e for e in everything if e["supported"]]
    refused = [e for e in everything if not e["supported"]]
    if json_output:
        from ..core._io import dumps

        sys.stdout.write(dumps(everything if show_all else runnable).decode() + "\n")
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    matching = f" matching {search!r}" if search else ""
    table = Table(title=f"{len(runnable)} benchmarks{matching} runnable as installed", title_justify="left")
    widths = {key: max([len(key)] + [len(str(e[key] or "")) for e in runnable]) for key in ("name", "metric")}
    table.add_column("name", min_width=widths["name"])
    table.add_column("metric", min_width=widths["metric"])
    table.add_column("subsets", justify="right")
    table.add_column("description", ratio=1)
    # One line per benchmark: the description is cut to what the terminal has left.
    room = max(10, console.width - widths["name"] - widths["metric"] - 7 - 13)
    for e in runnable:
        text = e["description"].split(". ")[0].rstrip(".") + "." if e["description"] else ""
        if e.get("requires_judge"):
            text = f"(needs --judge: scored by an LLM judge) {text}"
        if len(text) > room:
            text = text[: room - 1] + "…"
        table.add_row(e["name"], e["metric"] or "", str(len(e["subsets"])), escape(text))
    console.print(table)
    if not refused:
        return
    if not show_all:
        console.print(f"{len(refused)} more{matching} cannot run as installed (an optional package, docker, "
                      "multimodal, agent): `evalsvc benchmarks --all` lists them with the reason.")
        return
    others = Table(title=f"{len(refused)} benchmarks{matching} that cannot run as installed", title_justify="left")
    others.add_column("name", no_wrap=True)
    others.add_column("why not", ratio=1)
    for e in refused:
        others.add_row(e["name"], escape(f"{e['name']} {e['unsupported_reason']}"))
    console.print(others)


def register(app: typer.Typer) -> None:
    """Add the `eval` and `benchmarks` commands to the evalsvc app."""
    app.command("eval")(eval_command)
    app.command("benchmarks")(benchmarks_command)
