"""`evalsvc perf`: flags -> PerfConfig -> run_perf -> a live progress bar and a table per run."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

from ..core.errors import ConfigError, EvalsvcError
from ._common import fail, parse_json_option

_LIST_HELP = "One value, or several (comma-separated or repeated) to sweep."


def _values(name: str, raw: list[str] | None, cast: type) -> Any:
    if not raw:
        return None
    items = [piece.strip() for chunk in raw for piece in chunk.split(",") if piece.strip()]
    out = []
    for item in items:
        try:
            out.append(cast(item))
        except ValueError:
            kind = "an integer" if cast is int else "a number"
            raise ConfigError(name, f"expected {kind}, got {item!r}") from None
    return out[0] if len(out) == 1 else out


def perf(
    model: Annotated[str, typer.Option(help="Model name sent in each request.")],
    url: Annotated[str, typer.Option(help="Complete endpoint URL, e.g. http://127.0.0.1:8000/v1/chat/completions.")],
    api: Annotated[str, typer.Option(help="Wire dialect: openai | dashscope | anthropic | gemini.")] = "openai",
    api_key: Annotated[Optional[str], typer.Option(envvar="EVALSVC_API_KEY", show_envvar=True,
                                                   help="API key (never logged or written).")] = None,
    number: Annotated[Optional[list[str]], typer.Option(help=f"Measured requests per run (1000). {_LIST_HELP}")] = None,
    parallel: Annotated[Optional[list[str]], typer.Option(help=f"Max requests in flight (1). {_LIST_HELP}")] = None,
    rate: Annotated[Optional[list[str]], typer.Option(help=f"Arrivals/s, -1 = unlimited (-1). {_LIST_HELP}")] = None,
    arrival: Annotated[str, typer.Option(help="poisson | constant spacing when --rate > 0.")] = "poisson",
    dataset: Annotated[str, typer.Option(help="openqa | random | line_by_line | custom.")] = "openqa",
    dataset_path: Annotated[Optional[str], typer.Option(help="Local prompt file (line_by_line, custom) or openqa copy.")] = None,
    prompt_tokens: Annotated[int, typer.Option(help="Prompt length of the random dataset, in tokens.")] = 1024,
    tokenizer_path: Annotated[Optional[str], typer.Option(help="Local tokenizer dir for exact random prompt lengths.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Output tokens requested per request.")] = 2048,
    min_tokens: Annotated[Optional[int], typer.Option(help="Minimum output tokens (vLLM/SGLang min_tokens).")] = None,
    temperature: Annotated[float, typer.Option()] = 0.0,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="Stream responses (needed for TTFT/ITL).")] = True,
    warmup: Annotated[int, typer.Option(help="Requests per run sent first and excluded from metrics.")] = 0,
    duration: Annotated[Optional[float], typer.Option(help="Stop each run after this many seconds.")] = None,
    timeout: Annotated[float, typer.Option(help="Per-request timeout, seconds.")] = 600.0,
    connect_timeout: Annotated[float, typer.Option(help="Connection timeout, seconds.")] = 30.0,
    workers: Annotated[int, typer.Option(help="Client processes sharing the load (raise it if the run is client-bound).")] = 1,
    slo: Annotated[Optional[str], typer.Option(help='SLO thresholds in ms as JSON, e.g. \'{"ttft_ms": 500, "tpot_ms": 50}\'.')] = None,
    header: Annotated[Optional[list[str]], typer.Option(help="Extra header 'Name: value' (repeatable).")] = None,
    extra_body: Annotated[Optional[str], typer.Option(help="JSON object merged into every request body.")] = None,
    preflight: Annotated[bool, typer.Option("--preflight/--no-preflight",
                                            help="Send one test request first; stop with the server's "
                                                 "answer if it does not succeed.")] = True,
    seed: Annotated[int, typer.Option(help="Seeds prompt sampling and Poisson arrivals.")] = 42,
    record_requests: Annotated[bool, typer.Option("--record-requests/--no-record-requests",
                                                  help="Write one JSONL record per request.")] = True,
    work_dir: Annotated[str, typer.Option(help="Each run writes a timestamped directory under it.")] = "outputs",
    report: Annotated[bool, typer.Option("--report/--no-report",
                                         help="Write report.html (charts, opens offline).")] = True,
    debug: Annotated[bool, typer.Option(help="More detail in errors and outputs.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result object as JSON (for scripts).")] = False,
) -> None:
    """Load-test an LLM endpoint: TTFT, TPOT, ITL, latency and throughput under concurrency or rate."""
    from ..core.config import PerfConfig

    try:
        kwargs: dict[str, Any] = dict(
            model=model, url=url, api=api, api_key=api_key, arrival=arrival, dataset=dataset,
            dataset_path=dataset_path, prompt_tokens=prompt_tokens, tokenizer_path=tokenizer_path,
            max_tokens=max_tokens, min_tokens=min_tokens, temperature=temperature, stream=stream,
            warmup=warmup, duration=duration, timeout=timeout, connect_timeout=connect_timeout,
            workers=workers, seed=seed, record_requests=record_requests, work_dir=work_dir, debug=debug, report=report,
            preflight=preflight,
            slo=parse_json_option("slo", slo), extra_body=parse_json_option("extra_body", extra_body),
            headers=_headers(header),
        )
        for name, raw, cast in (("number", number, int), ("parallel", parallel, int), ("rate", rate, float)):
            value = _values(name, raw, cast)
            if value is not None:
                kwargs[name] = value
        config = PerfConfig(**kwargs)
        result = _run(config, quiet=json_out)
    except EvalsvcError as exc:
        fail(exc)
    if json_out:
        from ..core._io import dumps

        sys.stdout.write(dumps(result.to_dict()).decode() + "\n")
    else:
        from ._render import print_perf

        print_perf(result)
    if result.status == "interrupted":
        raise typer.Exit(code=130)
    if result.status == "failed":
        print(f"evalsvc perf: failed: {result.error}", file=sys.stderr)
        raise typer.Exit(code=1)


def _headers(raw: list[str] | None) -> dict[str, str] | None:
    if not raw:
        return None
    out = {}
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ConfigError("header", f"expected 'Name: value', got {item!r}")
        out[name.strip()] = value.strip()
    return out


def _run(config: Any, *, quiet: bool) -> Any:
    from ..core.perf import run_perf

    if quiet or not sys.stderr.isatty():
        return run_perf(config, progress=_plain_progress(config) if not quiet else None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    bars: dict[str, Any] = {}
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rps]:>8.1f} req/s"), TextColumn("failed {task.fields[failed]}"),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        def progress(event: dict[str, Any]) -> None:
            if event.get("type") != "progress":
                return
            key = event["run"]
            if key not in bars:
                bars[key] = bar.add_task(key, total=event["total"], rps=0.0, failed=0)
            bar.update(bars[key], completed=event["done"], rps=event["rps"], failed=event["failed"])

        return run_perf(config, progress=progress)


def _plain_progress(config: Any) -> Any:
    """Without a terminal (CI logs): one line per run every few seconds instead of a redrawn bar."""
    import time

    last = [0.0]

    def progress(event: dict[str, Any]) -> None:
        now = time.monotonic()
        if event.get("type") == "progress" and now - last[0] >= 5.0:
            last[0] = now
            print(f"[{event['run']}] {event['done']}/{event['total']} done, {event['failed']} failed, "
                  f"{event['rps']:.1f} req/s", file=sys.stderr, flush=True)

    return progress


def register(app: typer.Typer) -> None:
    app.command("perf")(perf)
