"""`evalsvc service`: serve the HTTP API with uvicorn."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.errors import EvalsvcError
from ._common import fail


def register(app: typer.Typer) -> None:
    app.command("service")(service)


def service(
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0: all; 127.0.0.1: this machine only).")]
    = "0.0.0.0",
    port: Annotated[int, typer.Option(help="TCP port (0: any free port).", min=0, max=65535)] = 9000,
    debug: Annotated[bool, typer.Option("--debug", help="Debug logs; 500 answers carry the traceback.")] = False,
    token: Annotated[str | None, typer.Option(
        help="Bearer token required on every /api/ route. On the command line it shows in `ps` to every user "
             "of the machine: prefer --token-file or the environment variable.", envvar="EVALSVC_TOKEN",
        show_envvar=True)] = None,
    token_file: Annotated[Path | None, typer.Option(
        help="File whose first line is the bearer token (preferred over --token).", envvar="EVALSVC_TOKEN_FILE",
        show_envvar=True)] = None,
    outputs: Annotated[Path | None, typer.Option(
        help="Outputs root: runs write under it (a client's work_dir is relative to it); job history lives in "
             "its .evalsvc/.  [default: outputs]", envvar="EVALSVC_OUTPUTS", show_envvar=True)] = None,
    data_root: Annotated[list[Path] | None, typer.Option(
        "--data-root", help="Directory runs may read datasets/tokenizers from (repeatable; env "
                            "EVALSVC_DATA_ROOTS, ':'-separated).")] = None,
    dataset_dir: Annotated[Path | None, typer.Option(
        help="Local benchmark copies (one folder per benchmark) for eval requests that name no dataset_dir.",
        envvar="EVALSVC_DATASET_DIR", show_envvar=True)] = None,
    max_queue: Annotated[int | None, typer.Option(
        help="Jobs allowed to wait; one more is answered 429.  [default: 16]", min=0,
        envvar="EVALSVC_MAX_QUEUE", show_envvar=True)] = None,
    eval_concurrency: Annotated[int | None, typer.Option(
        help="Eval jobs running at once (perf jobs run one at a time).  [default: 2]", min=1,
        envvar="EVALSVC_EVAL_CONCURRENCY", show_envvar=True)] = None,
    cancel_grace: Annotated[float, typer.Option(
        help="Seconds a cancelled or interrupted run may take to stop before it is terminated.", min=0)] = 15.0,
    header_timeout: Annotated[float, typer.Option(
        help="Seconds a connection may take to send a complete request head before it is closed.",
        min=0.001)] = 10.0,
    max_connections: Annotated[int | None, typer.Option(
        help="Open connections served at once; more are closed.  [default: half the open-file limit, "
             "at most 1000]", min=1)] = None,
    max_number: Annotated[int | None, typer.Option(
        help="Limit: measured requests per perf run.  [default: 100000]", min=1, rich_help_panel="Limits")] = None,
    max_parallel: Annotated[int | None, typer.Option(
        help="Limit: perf parallel / eval eval_batch_size.  [default: 1000]", min=1, rich_help_panel="Limits")] = None,
    max_prompt_tokens: Annotated[int | None, typer.Option(
        help="Limit: perf prompt_tokens.  [default: 131072]", min=1, rich_help_panel="Limits")] = None,
    max_tokens: Annotated[int | None, typer.Option(
        help="Limit: output tokens requested (perf max_tokens, eval generation_config.max_tokens).  "
             "[default: 131072]", min=1, rich_help_panel="Limits")] = None,
    max_warmup: Annotated[int | None, typer.Option(
        help="Limit: perf warm-up requests.  [default: 1000]", min=1, rich_help_panel="Limits")] = None,
    max_runs: Annotated[int | None, typer.Option(
        help="Limit: runs in one perf sweep.  [default: 64]", min=1, rich_help_panel="Limits")] = None,
    max_job_seconds: Annotated[float | None, typer.Option(
        help="Limit: wall time of a running job; longer ones are stopped (failed, timeout). Bounds perf "
             "duration and eval timeout (the default timeout of eval jobs).  [default: 7200]",
        min=0.001, rich_help_panel="Limits")] = None,
    max_text: Annotated[int | None, typer.Option(
        help="Limit: characters in a stored text field (model name, URL, header value).  [default: 1024]",
        min=1, rich_help_panel="Limits")] = None,
    max_body_json: Annotated[int | None, typer.Option(
        help="Limit: bytes of JSON in headers, extra_body, generation_config, dataset_args.  [default: 65536]",
        min=1, rich_help_panel="Limits")] = None,
    keep_days: Annotated[float | None, typer.Option(
        help="Delete finished jobs (output directory, log, record) this many days after they finished "
             "(checked hourly).  [default: keep them]", min=0.001)] = None,
    allow_target: Annotated[list[str] | None, typer.Option(
        "--allow-target", help="Host, address or network (10.0.0.0/8) runs may send requests to (repeatable); "
                               "without it any host but link-local ones (169.254.0.0/16, fe80::/10).")] = None,
    log_format: Annotated[str, typer.Option(
        help="Log lines as readable text with UTC timestamps (text) or one JSON object per line (json); "
             "every line about a request carries its request id.")] = "text",
    metrics_public: Annotated[bool, typer.Option(
        "--metrics-public", help="Serve /metrics without the bearer token (for a scraper that cannot send "
                                 "one); by default it needs the token like /api/.")] = False,
    ray_address: Annotated[str | None, typer.Option(
        help="Run perf and eval jobs on this Ray cluster (\"auto\", \"ray://host:port\", the head's \"host:port\"); "
             "a request may not name another. Needs the ray extra: pip install 'evalsvc[ray]'.")] = None,
    allow_origin: Annotated[list[str] | None, typer.Option(
        "--allow-origin", help="Browser origin (https://ui.example.org, or '*') allowed to call /api/ routes "
                               "besides the service's own; others get 403 (repeatable).")] = None,
) -> None:
    """Serve evalsvc over HTTP: POST /api/v1/eval, /api/v1/perf, a job API, a dashboard at /ui, /metrics,
    /health, /openapi.json."""
    from ..core.jobs._limits import ServiceLimits
    from ..http import run_service
    from ..http._app import read_token_file

    given: dict[str, Any] = {
        "max_number": max_number, "max_parallel": max_parallel, "max_prompt_tokens": max_prompt_tokens,
        "max_tokens": max_tokens, "max_warmup": max_warmup, "max_runs": max_runs,
        "max_job_seconds": max_job_seconds, "max_text": max_text, "max_body_json": max_body_json}
    try:
        if token_file is not None:
            token = read_token_file(token_file)
        elif token and any(a == "--token" or a.startswith("--token=") for a in sys.argv):
            print("WARNING: --token on the command line shows in `ps` to every user of this machine; "
                  "use --token-file or EVALSVC_TOKEN.", file=sys.stderr)
        limits = ServiceLimits(**{k: v for k, v in given.items() if v is not None})
        run_service(host, port, debug, outputs=str(outputs) if outputs is not None else None, token=token,
                    data_roots=tuple(str(p) for p in data_root) if data_root else None,
                    dataset_dir=str(dataset_dir) if dataset_dir is not None else None, max_queued=max_queue,
                    eval_concurrency=eval_concurrency, cancel_grace_s=cancel_grace,
                    allow_origins=tuple(allow_origin) if allow_origin else None,
                    header_timeout_s=header_timeout, max_connections=max_connections, limits=limits,
                    allow_targets=tuple(allow_target) if allow_target else None, keep_days=keep_days,
                    log_format=log_format, metrics_public=metrics_public, ray_address=ray_address)
    except EvalsvcError as exc:
        fail(exc)
