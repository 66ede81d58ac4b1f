"""One small chat request before an evaluation starts.

Without it a dead endpoint costs evalscope its full retry loop on every sample (47 s per sample with
its defaults) before the run fails; with it the user learns in seconds, with the reason.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..config import EvalConfig
from ..errors import EndpointStatusError, EndpointTimeout, EndpointUnreachable
from ._plan import api_base
from ._secrets import mask, secrets_of

_RETRIED = {408, 429, 500, 502, 503, 504}
_DEFAULT_TIMEOUT_S = 60.0


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


async def preflight(config: EvalConfig) -> dict[str, Any]:
    """Send one tiny chat completion; return the response body or raise an EndpointError.

    429 and 5xx answers are retried like evaluation requests (`retries`, `retry_interval`); only an
    endpoint that keeps failing, refuses the connection, times out, rejects the key, does not know
    the path or the model, or does not answer like an OpenAI chat endpoint fails the preflight.

    Raises:
        EndpointUnreachable, EndpointTimeout, EndpointStatusError
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
    total = float(config.generation_config.get("timeout") or _DEFAULT_TIMEOUT_S)
    timeout = aiohttp.ClientTimeout(total=total, connect=min(10.0, total))
    attempts = config.retries + 1
    last = ""
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for attempt in range(attempts):
            try:
                async with session.post(url, json=body, headers=headers) as resp:
                    text = mask(await resp.text(errors="replace"), secrets_of(config.api_key))  # 401s may quote it
                    status = resp.status
            except asyncio.TimeoutError:
                raise EndpointTimeout(f"{url} did not answer the preflight request within {total:g} s") from None
            except aiohttp.ClientConnectorError as exc:
                raise EndpointUnreachable(f"cannot connect to {url}: {exc.os_error or exc}") from None
            except aiohttp.ClientError as exc:
                raise EndpointUnreachable(f"request to {url} failed: {type(exc).__name__}: {exc}") from None
            if status == 200:
                return _check_body(url, text)
            last = f"HTTP {status}: {_snippet(text)}"
            if status not in _RETRIED:
                break
            if attempt + 1 < attempts and config.retry_interval > 0:
                await asyncio.sleep(config.retry_interval)
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
