"""`evalsvc mock`: serve the simulated OpenAI-compatible endpoint (see evalsvc.core.mock)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ._common import fail

_FAULT_HELP = "Share of requests in [0, 1], exact over any --fault-cycle consecutive requests."


def mock(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one (the URL printed says which).")] = 8000,
    model: Annotated[str, typer.Option(help="Model id listed by /v1/models.")] = "mock-model",
    ttft_ms: Annotated[float, typer.Option(help="Time from request received to the first content chunk.")] = 200.0,
    itl_ms: Annotated[float, typer.Option(help="Gap between content chunks.")] = 20.0,
    output_tokens: Annotated[int, typer.Option(
        help="Tokens per answer (cut to the request's max_tokens, raised to its min_tokens).")] = 128,
    tokens_per_chunk: Annotated[int, typer.Option(help="Tokens packed in one streamed chunk.")] = 1,
    jitter_ms: Annotated[float, typer.Option(help="Seeded uniform +- variation of every chunk deadline.")] = 0.0,
    role_chunk: Annotated[bool, typer.Option(
        help="Open chat streams with a role-only chunk (as vLLM does), sent as soon as the request arrives.")] = True,
    separate_finish_chunk: Annotated[bool, typer.Option(
        help="Send finish_reason in its own chunk instead of on the last content chunk.")] = False,
    seed: Annotated[int, typer.Option(help="Seeds the fault plan and the jitter.")] = 0,
    fault_cycle: Annotated[int, typer.Option(help="Length of the repeated, shuffled fault plan.")] = 1000,
    error_500: Annotated[float, typer.Option(help="Answer 500. " + _FAULT_HELP)] = 0.0,
    error_429: Annotated[float, typer.Option(help="Answer 429 with Retry-After. " + _FAULT_HELP)] = 0.0,
    drop_mid_stream: Annotated[float, typer.Option(help="Abort the connection half-way. " + _FAULT_HELP)] = 0.0,
    malformed_sse: Annotated[float, typer.Option(help="Send one data: line that is not JSON. " + _FAULT_HELP)] = 0.0,
    no_done: Annotated[float, typer.Option(
        help="End the stream with neither finish_reason nor [DONE]. " + _FAULT_HELP)] = 0.0,
    empty_completion: Annotated[float, typer.Option(
        help="Answer 200, finished, with no content. " + _FAULT_HELP)] = 0.0,
    retry_after_s: Annotated[int, typer.Option(help="Retry-After seconds sent with 429.")] = 1,
    answers: Annotated[str | None, typer.Option(
        help='JSON list or JSONL file of {"match": ..., "reply": ...} rows: the first row whose match is in the '
             "last user message (or prompt) gives the reply; otherwise filler text.")] = None,
) -> None:
    """Serve a simulated OpenAI-compatible endpoint with set delays, exact faults and fixed answers.

    Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health, GET /mock/stats,
    POST /mock/reset. A request header `X-Mock-Fault: <kind>` forces one fault on that request.
    """
    from ..core.errors import EvalsvcError
    from ..core.mock import MockConfig, run_mock

    options: dict[str, Any] = dict(
        host=host, port=port, model=model, ttft_ms=ttft_ms, itl_ms=itl_ms, output_tokens=output_tokens,
        tokens_per_chunk=tokens_per_chunk, jitter_ms=jitter_ms, role_chunk=role_chunk,
        separate_finish_chunk=separate_finish_chunk, seed=seed, fault_cycle=fault_cycle, error_500=error_500,
        error_429=error_429, drop_mid_stream=drop_mid_stream, malformed_sse=malformed_sse, no_done=no_done,
        empty_completion=empty_completion, retry_after_s=retry_after_s, answers=answers,
    )
    try:
        cfg = MockConfig(**options)
        final = run_mock(cfg, on_ready=lambda url: _ready(url, cfg))
    except EvalsvcError as exc:
        fail(exc)
    if final:
        faults = ", ".join(f"{k} {v}" for k, v in final["faults"].items() if v) or "none"
        print(f"evalsvc mock: stopped after {final['requests']} requests (faults: {faults})", file=sys.stderr)


def _ready(url: str, cfg: Any) -> None:
    # The first stdout line is the contract: a parent process reads the URL from it.
    print(f"evalsvc mock: serving on {url}", flush=True)
    faults = ", ".join(f"{k}={v:g}" for k, v in cfg.fault_shares().items() if v) or "none"
    port = url.rsplit(":", 1)[1].split("/", 1)[0]
    print(f"evalsvc mock: listening on {cfg.host}:{port}; ttft {cfg.ttft_ms:g} ms, itl {cfg.itl_ms:g} ms, "
          f"{cfg.output_tokens} tokens, faults: {faults}; Ctrl-C stops", flush=True)


def register(app: typer.Typer) -> None:
    """Add the `mock` command to the evalsvc app."""
    app.command("mock")(mock)
