"""Check the endpoint before an evaluation starts, without generating where it can.

Without a check a dead endpoint costs evalscope its full retry loop on every sample (47 s per sample with
its defaults) before the run fails; with it the user learns in seconds, with the reason. The check is
`GET {api_url}/models` first: a model list naming the model settles it without a generation (a test
generation fills a server's prompt cache, and llama-server then answered 31 of 45 samples differently
from the same requests without it). Only when /models is unavailable, or does not list the model, one
short chat completion is sent instead. Transient failures (429 / 5xx, a reply cut off, an answer that
times out) are retried `retries` times, `retry_interval` apart.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .._net import aiohttp_proxy, without_credentials
from ..config import EvalConfig
from ..errors import EndpointError, EndpointStatusError, EndpointTimeout, EndpointUnreachable
from ._plan import api_base
from .._secrets import config_secrets, mask

_RETRIED = {408, 429, 500, 502, 503, 504}
_DEFAULT_TIMEOUT_S = 60.0
_CONNECT_TIMEOUT_S = 10.0
_KEY_REFUSED = (401, 403)


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


class _Transient(Exception):
    """A failure worth another attempt; `error` is what to raise when the attempts run out."""

    def __init__(self, error: EndpointError) -> None:
        super().__init__(str(error))
        self.error = error


async def preflight(config: EvalConfig, *, deadline: float | None = None) -> dict[str, Any]:
    """Check the endpoint serves the model; return what settled it, or raise an EndpointError.

    `GET {api_url}/models` first; a 200 whose list names `config.model` settles it (no generation).
    A key refused there (401/403) fails at once. Otherwise (no /models, an error, a list without the
    model) one tiny chat completion is sent. 429 and 5xx answers, replies cut off and answers that time
    out are retried like evaluation requests (`retries`, `retry_interval`); only an endpoint that keeps
    failing, refuses the connection, cannot be connected to in time, rejects the key, does not know the
    path or the model, or does not answer like an OpenAI chat endpoint fails the preflight.
    Each attempt may take `generation_config.timeout` (60 s when unset), connecting at most 10 s of
    it, and never more than is left before `deadline`. Cancel it by cancelling the task. The requests
    go through the proxy evalscope's own requests will use (evalsvc's one rule, `_net.proxy_for`).

    Args:
        config: the evaluation's config.
        deadline: time.monotonic() value by which the run must end (its `timeout`), or None.

    Returns:
        {"checked": "models", "models": [ids]} or {"checked": "generation", "body": <the completion>}.

    Raises:
        EndpointUnreachable, EndpointTimeout (saying whether connecting or answering took too long,
        and which limit applied), EndpointStatusError
    """
    import aiohttp

    base = api_base(config.api_url)
    probe = _Probe(config, deadline)
    async with aiohttp.ClientSession(trace_configs=[probe.trace()]) as session:
        models_url = base + "/models"
        try:
            status, text = await probe.retrying(session, "GET", models_url, None)
        except _Transient:
            status, text = 0, ""  # /models keeps failing: the generation says whether the endpoint does
        if status in _KEY_REFUSED:
            raise EndpointStatusError(f"{models_url} answered the preflight check with HTTP {status}: "
                                      f"{_snippet(text)}{_key_hint(status)}", status=status)
        ids = _model_ids(text) if status == 200 else None
        if ids is not None and config.model in ids:
            return {"checked": "models", "models": ids}
        url = base + "/chat/completions"
        body = {"model": config.model, "messages": [{"role": "user", "content": "Reply with OK."}],
                "max_tokens": 1, "temperature": 0.0, "stream": False}
        try:
            status, text = await probe.retrying(session, "POST", url, body)
        except _Transient as exc:
            raise exc.error from None
    if status == 200:
        return {"checked": "generation", "body": _check_body(url, text)}
    hint = _key_hint(status) or ({404: f" (is api_url the OpenAI base URL, e.g. http://host:8000/v1, and does the "
                                        f"endpoint serve model {config.model!r}?)"}.get(status, ""))
    raise EndpointStatusError(f"{url} answered the preflight request with HTTP {status}: {_snippet(text)}{hint}",
                              status=status)


def _key_hint(status: int) -> str:
    return {401: " (is the API key right?)", 403: " (is the API key allowed to use this model?)"}.get(status, "")


def _model_ids(text: str) -> list[str] | None:
    """The ids of an OpenAI model list ({"data": [{"id": ...}]}), or None if `text` is not one."""
    import json

    try:
        data = json.loads(text)
    except ValueError:
        return None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return None
    return [str(m["id"]) for m in items if isinstance(m, dict) and m.get("id") is not None]


class _Probe:
    """The preflight's requests: one client, one proxy rule, the run's deadline, bounded retries."""

    def __init__(self, config: EvalConfig, deadline: float | None) -> None:
        self.config = config
        self.deadline = deadline
        self.headers = {"Authorization": f"Bearer {config.api_key}"}
        self.connected = False

    def trace(self) -> Any:
        import aiohttp

        async def on_connected(*_: Any) -> None:
            self.connected = True

        trace = aiohttp.TraceConfig()
        trace.on_connection_create_end.append(on_connected)
        trace.on_connection_reuseconn.append(on_connected)
        return trace

    def run_out(self, url: str, last: str) -> EndpointTimeout:
        said = f" (its last answer: {last})" if last else ""
        return EndpointTimeout(f"the run's timeout ({self.config.timeout:g} s) was reached during the preflight "
                               f"request to {url}{said}")

    async def retrying(self, session: Any, method: str, url: str, body: dict[str, Any] | None) -> tuple[int, str]:
        """(status, text) of the first answer that is not transient, or of the last attempt.

        Raises:
            _Transient: the last attempt failed in a way worth retrying (its error inside).
            EndpointError: a failure not worth retrying (refused connection, connect timeout, deadline).
        """
        config = self.config
        attempts = config.retries + 1
        last = ""
        for attempt in range(attempts):
            try:
                status, text = await self.once(session, method, url, body)
            except _Transient as exc:
                if attempt + 1 >= attempts:
                    raise
                last = str(exc.error)
            else:
                if status not in _RETRIED:
                    return status, text
                last = f"HTTP {status}: {_snippet(text)}"
                if attempt + 1 >= attempts:
                    message = f"{url} answered the preflight request with {last}"
                    raise _Transient(EndpointStatusError(
                        message + (f" after {attempts} attempts" if attempts > 1 else ""), status=status))
            pause = config.retry_interval
            if pause > 0:
                if self.deadline is not None and self.deadline - time.monotonic() <= pause:
                    raise self.run_out(url, last)
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    async def once(self, session: Any, method: str, url: str, body: dict[str, Any] | None) -> tuple[int, str]:
        import aiohttp

        config = self.config
        proxy = aiohttp_proxy(url)
        via = f" through the proxy {without_credentials(proxy['proxy'])}" if proxy else ""
        per_request = config.generation_config.get("timeout")
        # `limit` is the time this attempt may take; `shown`/`which` name the setting that decided it.
        limit = shown = float(per_request or _DEFAULT_TIMEOUT_S)
        which = "generation_config.timeout" if per_request else "the preflight's default; set generation_config.timeout"
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise self.run_out(url, "")
            if left < limit:
                limit, shown, which = left, float(config.timeout or left), "the run's timeout"
        connect = min(_CONNECT_TIMEOUT_S, limit)
        self.connected = False
        try:
            async with session.request(method, url, json=body, headers=self.headers, **proxy,
                                       timeout=aiohttp.ClientTimeout(total=limit, connect=connect)) as resp:
                text = mask(await resp.text(errors="replace"), config_secrets(config))  # 401s may quote it
                return resp.status, text
        except asyncio.TimeoutError:
            if not self.connected:
                if connect < limit:
                    shown, which = connect, "the preflight's connect limit"
                raise EndpointTimeout(f"could not connect to {url}{via} within {shown:g} s ({which}) "
                                      "for the preflight request") from None
            error = EndpointTimeout(f"{url} accepted the connection but did not answer the preflight request "
                                    f"within {shown:g} s ({which})")
            if self.deadline is not None and self.deadline - time.monotonic() <= 0:
                raise error from None
            raise _Transient(error) from None
        except aiohttp.ClientConnectorError as exc:
            raise EndpointUnreachable(f"cannot connect to {url}{via}: {exc.os_error or exc}") from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            # the reply was cut off: worth another attempt
            raise _Transient(EndpointUnreachable(f"the preflight request to {url}{via} was cut off: "
                                                 f"{type(exc).__name__}: {exc}")) from None
        except aiohttp.ClientError as exc:
            raise EndpointUnreachable(f"request to {url}{via} failed: {type(exc).__name__}: {exc}") from None


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
