"""`evalsvc eval` (accuracy on benchmarks, live progress per dataset) and `evalsvc benchmarks`."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ._common import fail, parse_json_option


def _split_names(values: list[str] | None) -> list[str]:
    names: list[str] = []
    for value in values or []:
        names += [v for v in value.replace(",", " ").split() if v]
    return names


def _parse_limit(text: str | None) -> int | float | None:
    from ..core.errors import ConfigError

    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError("limit", f"must be a positive integer or a fraction in (0, 1), got {text!r}") from None
    return int(value) if value.is_integer() else value


def eval_command(
    names: Annotated[list[str] | None, typer.Argument(
        metavar="[DATASETS]...", help="Benchmarks to evaluate (same as --datasets).", show_default=False)] = None,
    model: Annotated[str | None, typer.Option(help="Model name sent in each request.", show_default=False)] = None,
    api_url: Annotated[str | None, typer.Option(
        help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.", show_default=False)] = None,
    datasets: Annotated[list[str] | None, typer.Option(
        "--datasets", "-d", help="Benchmarks: `--datasets gsm8k iquiz`, `-d gsm8k -d iquiz` or `gsm8k,iquiz` "
        "(see `evalsvc benchmarks`).", show_default=False)] = None,
    api_key: Annotated[str, typer.Option(envvar="EVALSVC_API_KEY", show_default=False,
                                         help="API key (or set EVALSVC_API_KEY). Never written or printed.")] = "EMPTY",
    limit: Annotated[str | None, typer.Option(
        help="Samples per dataset subset: a count, or a fraction in (0, 1).", show_default=False)] = None,
    eval_batch_size: Annotated[int, typer.Option(help="Concurrent requests per dataset.")] = 1,
    generation_config: Annotated[str | None, typer.Option(
        help='JSON: {"temperature": 0.0, "max_tokens": 2048, "top_p": ..., "top_k": ..., "timeout": ...}.',
        show_default=False)] = None,
    temperature: Annotated[float | None, typer.Option(
        help="Shortcut for generation_config.temperature (default 0.0).", show_default=False)] = None,
    max_tokens: Annotated[int | None, typer.Option(
        help="Shortcut for generation_config.max_tokens (default 2048).", show_default=False)] = None,
    work_dir: Annotated[str, typer.Option(help="Each run writes a timestamped directory under it.")] = "outputs",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    debug: Annotated[bool, typer.Option("--debug", help="Verbose evalscope logs, shown live.")] = False,
    dataset_args: Annotated[str | None, typer.Option(
        help='JSON per dataset: {"ceval": {"subset_list": ["logic"], "few_shot_num": 0}}.', show_default=False)] = None,
    dataset_dir: Annotated[str | None, typer.Option(
        help="Folder of local dataset copies, one sub-folder per benchmark (offline machines).",
        show_default=False)] = None,
    max_workers: Annotated[int, typer.Option(help="Datasets evaluated at once, one worker process each.")] = 4,
    timeout: Annotated[float | None, typer.Option(
        help="Overall time limit in seconds; the run is stopped (and resumable) when it is reached.",
        show_default=False)] = None,
    retries: Annotated[int, typer.Option(help="Retries per request on 429 / 5xx / timeouts.")] = 2,
    retry_interval: Annotated[float, typer.Option(help="Seconds between retries.")] = 1.0,
    use_cache: Annotated[str | None, typer.Option(
        help="Output directory of an earlier, interrupted run: resume it.", show_default=False)] = None,
    preflight: Annotated[bool, typer.Option(help="Check the endpoint answers before starting.")] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Evaluate a served model's accuracy on benchmarks (gsm8k, iquiz, ceval, mmlu, ...).

    Each dataset runs in its own worker process, several at once; Ctrl-C stops the run and keeps
    what was done, and --use-cache resumes it.
    """
    from ..core.config import EvalConfig
    from ..core.errors import ConfigError, EvalsvcError

    try:
        selected = _split_names(datasets) + _split_names(names)
        if not model:
            raise ConfigError("model", "is required (--model)")
        if not api_url:
            raise ConfigError("api_url", "is required (--api-url http://host:port/v1)")
        if not selected:
            raise ConfigError("datasets", "name at least one benchmark (--datasets gsm8k ...; see `evalsvc benchmarks`)")
        gen = parse_json_option("generation_config", generation_config) or {}
        if not isinstance(gen, dict):
            raise ConfigError("generation_config", "must be a JSON object")
        if temperature is not None:
            gen["temperature"] = temperature
        if max_tokens is not None:
            gen["max_tokens"] = max_tokens
        ds_args = parse_json_option("dataset_args", dataset_args) or {}
        config = EvalConfig.from_dict({
            "model": model, "api_url": api_url, "datasets": selected, "api_key": api_key,
            "limit": _parse_limit(limit), "eval_batch_size": eval_batch_size, "generation_config": gen,
            "work_dir": work_dir, "seed": seed, "debug": debug, "dataset_args": ds_args,
            "dataset_dir": dataset_dir, "max_workers": max_workers, "timeout": timeout, "retries": retries,
            "retry_interval": retry_interval, "use_cache": use_cache, "preflight": preflight,
        })
        result = _run(config, show_progress=not quiet, debug=debug)
    except EvalsvcError as exc:
        fail(exc)
    _report(result, json_output)


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
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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
        "--all", help="Also list benchmarks evalsvc cannot run (multimodal, agent, judged, sandboxed).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List the benchmarks evalsvc can evaluate, from evalscope's catalogue."""
    from ..core.eval import list_benchmarks

    entries = list_benchmarks(include_unsupported=show_all)
    if search:
        needle = search.lower()
        entries = [e for e in entries if needle in " ".join(
            [e["name"], e["pretty_name"], e["description"], *e["tags"]]).lower()]
    if json_output:
        from ..core._io import dumps

        sys.stdout.write(dumps(entries).decode() + "\n")
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    table = Table(title=f"{len(entries)} benchmarks" + (f" matching {search!r}" if search else ""),
                  title_justify="left")
    widths = {key: max([len(key)] + [len(str(e[key] or "")) for e in entries]) for key in ("name", "metric")}
    table.add_column("name", min_width=widths["name"])
    table.add_column("metric", min_width=widths["metric"])
    table.add_column("subsets", justify="right")
    table.add_column("description", ratio=1)
    # One line per benchmark: the description is cut to what the terminal has left.
    room = max(10, console.width - widths["name"] - widths["metric"] - 7 - 13)
    for e in entries:
        text = e["description"].split(". ")[0].rstrip(".") + "." if e["description"] else ""
        if not e["supported"]:
            text = f"(not runnable: {e['unsupported_reason']}) {text}"
        if len(text) > room:
            text = text[: room - 1] + "…"
        table.add_row(e["name"], e["metric"] or "", str(len(e["subsets"])),
                      f"[dim]{escape(text)}[/]" if not e["supported"] else escape(text))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the `eval` and `benchmarks` commands to the evalsvc app."""
    app.command("eval")(eval_command)
    app.command("benchmarks")(benchmarks_command)
