"""One small chat request before an evaluation starts.

Without it a dead endpoint costs evalscope its full retry loop on every sample (47 s per sample with
its defaults) before the run fails; with it the user learns in seconds, with the reason.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .._net import aiohttp_proxy, without_credentials
from ..config import EvalConfig
from ..errors import EndpointStatusError, EndpointTimeout, EndpointUnreachable
from ._plan import api_base
from .._secrets import config_secrets, mask

_RETRIED = {408, 429, 500, 502, 503, 504}
_DEFAULT_TIMEOUT_S = 60.0
_CONNECT_TIMEOUT_S = 10.0


def _snippet(text: str, limit: int = 120) -> str:
    """The reason an answer gives, short; never the target's content as such.

    The service may be pointed at any URL, so what the target answered is not relayed: only the
    `error.message` / `message` / `detail` string of a JSON error body (clipped), else its size.
    """
    import json

    try:
        data = json.loads(text)
    except ValueError:
        data = None
    reason = None
    if isinstance(data, dict):
        error = data.get("error")
        for value in ((error.get("message") if isinstance(error, dict) else error), data.get("message"),
                      data.get("detail")):
            if isinstance(value, str) and value.strip():
                reason = value
                break
    if reason is None:
        return f"a {'JSON' if data is not None else 'non-JSON'} body of {len(text.encode())} bytes"
    reason = " ".join("".join(c if c.isprintable() else " " for c in reason).split())
    return repr(reason if len(reason) <= limit else reason[:limit] + "...")


async def preflight(config: EvalConfig, *, deadline: float | None = None) -> dict[str, Any]:
    """Send one tiny chat completion; return the response body or raise an EndpointError.

    429 and 5xx answers are retried like evaluation requests (`retries`, `retry_interval`); only an
    endpoint that keeps failing, refuses the connection, times out, rejects the key, does not know
    the path or the model, or does not answer like an OpenAI chat endpoint fails the preflight.
    Each attempt may take `generation_config.timeout` (60 s when unset), connecting at most 10 s of
    it, and never more than is left before `deadline`. Cancel it by cancelling the task. The request
    goes through the proxy evalscope's own requests will use (evalsvc's one rule, `_net.proxy_for`).

    Args:
        config: the evaluation's config.
        deadline: time.monotonic() value by which the run must end (its `timeout`), or None.

    Raises:
        EndpointUnreachable, EndpointTimeout (saying whether connecting or answering took too long,
        and which limit applied), EndpointStatusError
    """
    import aiohttp

    url = api_base(config.api_url) + "/chat/completions"
    body = {
        "model": config.model,
        "messages": [{"role": "user", "content": "Reply with OK."}],
        "max_tokens": 1,
        "temperature": 0.0,
        "stream": False,
    }
    headers = {"Authorization": f"Bearer {config.api_key}"}
    proxy = aiohttp_proxy(url)
    via = f" through the proxy {without_credentials(proxy['proxy'])}" if proxy else ""
    per_request = config.generation_config.get("timeout")
    attempts = config.retries + 1
    last = ""
    connected = False

    async def on_connected(*_: Any) -> None:
        nonlocal connected
        connected = True

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_connected)
    trace.on_connection_reuseconn.append(on_connected)

    def run_out() -> EndpointTimeout:
        said = f" (its last answer: {last})" if last else ""
        return EndpointTimeout(f"the run's timeout ({config.timeout:g} s) was reached during the preflight request "
                               f"to {url}{said}")

    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        for attempt in range(attempts):
            # `limit` is the time this attempt may take; `shown`/`which` name the setting that decided it.
            limit = shown = float(per_request or _DEFAULT_TIMEOUT_S)
            which = ("generation_config.timeout" if per_request else
                     "the preflight's default; set generation_config.timeout")
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise run_out()
                if left < limit:
                    limit, shown, which = left, float(config.timeout or left), "the run's timeout"
            connect = min(_CONNECT_TIMEOUT_S, limit)
            connected = False
            try:
                async with session.post(url, json=body, headers=headers, **proxy,
                                        timeout=aiohttp.ClientTimeout(total=limit, connect=connect)) as resp:
                    text = mask(await resp.text(errors="replace"), config_secrets(config))  # 401s may quote it
                    status = resp.status
            except asyncio.TimeoutError:
                if not connected:
                    if connect < limit:
                        shown, which = connect, "the preflight's connect limit"
                    raise EndpointTimeout(f"could not connect to {url}{via} within {shown:g} s ({which}) "
                                          "for the preflight request") from None
                raise EndpointTimeout(f"{url} accepted the connection but did not answer the preflight request "
                                      f"within {shown:g} s ({which})") from None
            except aiohttp.ClientConnectorError as exc:
                raise EndpointUnreachable(f"cannot connect to {url}{via}: {exc.os_error or exc}") from None
            except aiohttp.ClientError as exc:
                raise EndpointUnreachable(f"request to {url}{via} failed: {type(exc).__name__}: {exc}") from None
            if status == 200:
                return _check_body(url, text)
            last = f"HTTP {status}: {_snippet(text)}"
            if status not in _RETRIED:
                break
            if attempt + 1 < attempts and config.retry_interval > 0:
                pause = config.retry_interval
                if deadline is not None and deadline - time.monotonic() <= pause:
                    raise run_out()
                await asyncio.sleep(pause)
    hint = {
        401: " (is the API key right?)",
        403: " (is the API key allowed to use this model?)",
        404: f" (is api_url the OpenAI base URL, e.g. http://host:8000/v1, and does the endpoint serve "
             f"model {config.model!r}?)",
    }.get(status, "")
    tries = f" after {attempts} attempts" if status in _RETRIED and attempts > 1 else ""
    raise EndpointStatusError(f"{url} answered the preflight request with {last}{tries}{hint}", status=status)


def _check_body(url: str, text: str) -> dict[str, Any]:
    import json

    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise EndpointStatusError(f"{url} answered 200 but not with an OpenAI chat completion: {_snippet(text)} "
                                  "(is api_url the OpenAI base URL, e.g. http://host:8000/v1?)", status=200)
    return data
