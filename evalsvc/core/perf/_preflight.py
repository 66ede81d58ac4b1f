"""One test request before a load test, as `vllm bench serve` sends: a wrong URL or a refused key stops the
run at once with the server's own answer, instead of N identical failures and a "completed" status.

The test request is built exactly like the run's (same dialect builder, URL, headers, key and extra body; the
dataset's first prompt) except for a small `max_tokens`, and goes through the engine's own client (`Sender`),
bounded by the run's `connect_timeout` and `timeout`. It is not part of any metric.
"""

from __future__ import annotations

import asyncio
import dataclasses
from urllib.parse import urlsplit

from .._net import host_port
from .._secrets import config_secrets, has_key, mask, redact_url, secret_name
from ..config import PerfConfig
from ..errors import EndpointError, EndpointStatusError, EndpointTimeout, EndpointUnreachable
from ._http import first_hop
from ._kinds import FailureKind, http_kind
from ._sender import Outcome, Sender
from .datasets import Prompt
from .dialects import get_dialect

TEST_MAX_TOKENS = 16
"""Output tokens the test request asks for (fewer if the run asks for fewer, more if min_tokens needs them)."""

ENDPOINT_PATHS = {
    "openai": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "dashscope": "/api/v1/services/aigc/text-generation/generation",
    "gemini": "/v1beta/models/{model}:generateContent",
}
"""The usual endpoint path per dialect (README's dialect table), for the hint after a 404 on a base URL."""

_EXCERPT = 160  # characters of the server's answer quoted in the error


async def preflight(config: PerfConfig, prompt: Prompt, stop: asyncio.Event | None = None) -> bool:
    """Send one test request like the run's; return True if it succeeded, False if `stop` was set meanwhile.

    Raises:
        EndpointUnreachable: no connection (refused, host unknown, `connect_timeout` passed).
        EndpointTimeout: connected, but no complete answer within `timeout`.
        EndpointStatusError: the server answered, but not with a success (its status and a scrubbed excerpt
            of its answer are in the message; a 404 on a base URL says which path to use, a 401/403 how to
            pass a key).
        EndpointError: the server closed the connection without answering.
    """
    dialect = get_dialect(config.api)
    body = dialect.build(config, probe_prompt(config, prompt))
    sender = Sender(dialect, config, [body], [prompt.tokens])
    task = asyncio.ensure_future(sender.send(0, None))
    waiter = asyncio.ensure_future(stop.wait()) if stop is not None else None
    try:
        await asyncio.wait([task] if waiter is None else [task, waiter], return_when=asyncio.FIRST_COMPLETED)
        if not task.done():  # stopped (Ctrl-C, a cancelled job) while the test request was in flight
            sender.stopping = True
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return False
        outcome = task.result()
    finally:
        if waiter is not None:
            waiter.cancel()
        if not task.done():  # the caller cancelled us: do not leave the request behind
            task.cancel()
            await asyncio.wait([task])
        sender.close()
    if outcome.kind is None:
        return True
    raise rejection(config, dialect.url(config, bool(config.stream)), outcome)


def probe_prompt(config: PerfConfig, prompt: Prompt) -> Prompt:
    """`prompt` asking for few output tokens: min(its max_tokens, TEST_MAX_TOKENS), at least `min_tokens`."""
    wanted = min(prompt.max_tokens or config.max_tokens, TEST_MAX_TOKENS)
    if config.min_tokens:
        wanted = max(wanted, config.min_tokens)
    return dataclasses.replace(prompt, max_tokens=wanted)


def rejection(config: PerfConfig, url: str, out: Outcome) -> EndpointError:
    """The error for a test request that did not succeed: one line, no secret in it."""
    secrets = config_secrets(config)
    shown = redact_url(url)
    detail = mask(" ".join((out.detail or "").split()), secrets)
    if len(detail) > _EXCERPT:
        detail = detail[:_EXCERPT] + "..."
    if out.kind == FailureKind.CONNECTION:
        target, port = host_port(url)
        host, hop_port = first_hop(url)
        if (host, hop_port) == (target, port):
            where = f"{urlsplit(url).scheme}://{target}:{port}"
        else:  # the environment routes this URL through a proxy
            where = f"the proxy {host}:{hop_port} for {target}"
        return EndpointUnreachable(f"cannot connect to {where} ({detail})")
    if out.kind == FailureKind.TIMEOUT:
        return EndpointTimeout(f"{shown} did not answer the test request within {config.timeout:g} s (timeout)")
    if not out.status:
        return EndpointError(f"{shown} did not answer the test request: {detail or out.kind}")
    said = f"HTTP {out.status}" + (f": {detail}" if out.kind == http_kind(out.status) and detail else "")
    if out.kind != http_kind(out.status):  # a 2xx that is not a usable answer
        said += f" but {out.kind}" + (f" ({detail})" if detail else "")
    hint = _hint(config, url, out.status)
    message = f"{shown} answered the test request with {said}" + (f"; {hint}" if hint else "")
    return EndpointStatusError(mask(message, secrets), status=out.status)


def _hint(config: PerfConfig, url: str, status: int) -> str:
    if status in (401, 403):
        if _sends_key(config):
            return "the API key was refused: check --api-key / EVALSVC_API_KEY (api_key)"
        return "no API key was sent: pass one with --api-key or EVALSVC_API_KEY (api_key)"
    if status == 404:
        model = f" and that it serves model {config.model!r}"
        if _is_base_url(url):
            return f"for api {config.api} use the complete endpoint URL, e.g. {suggested_url(config)}"
        example = ENDPOINT_PATHS[config.api].format(model=config.model)
        return f"check that the URL is the complete endpoint (.../{example.lstrip('/')} for api {config.api}){model}"
    return ""


def _sends_key(config: PerfConfig) -> bool:
    return has_key(config.api_key) or any(secret_name(name) for name in (config.headers or {}))


def _is_base_url(url: str) -> bool:
    """No path, or one ending at an API version (/v1, /v1/, /api/v1, /v1beta): a base URL, not an endpoint."""
    path = urlsplit(url).path.rstrip("/")
    return path == "" or path.endswith(("/v1", "/v1beta"))


def suggested_url(config: PerfConfig) -> str:
    """`config.url` completed with the dialect's usual endpoint path (redacted)."""
    parts = urlsplit(config.url)
    path = parts.path.rstrip("/")
    suffix = ENDPOINT_PATHS[config.api].format(model=config.model)
    segments = suffix.split("/")[1:]
    for n in range(len(segments), 0, -1):  # the longest leading part of the suffix the URL already ends with
        head = "/" + "/".join(segments[:n])
        if path.endswith(head):
            path += suffix[len(head):]
            break
    else:
        path += suffix
    return redact_url(parts._replace(path=path).geturl())


