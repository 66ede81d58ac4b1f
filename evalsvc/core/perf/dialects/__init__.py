"""API dialects: how a prompt becomes a request, and how a response becomes timings and tokens.

A dialect is one small module exposing `DIALECT`, an object with:
    build(config, prompt) -> bytes                   request body
    headers(config) -> dict[str, str]                request headers (auth in the dialect's style)
    url(config, stream) -> str                       the URL to POST to (some dialects change it to stream)
    stream_parser(config) -> StreamParser                 a fresh incremental parser for one streamed response
    parse_body(body: bytes) -> BodyResult            a complete non-streamed response
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ...errors import ConfigError

if TYPE_CHECKING:
    from ._base import Dialect

_MODULES = {"openai": "openai", "dashscope": "dashscope", "anthropic": "anthropic", "gemini": "gemini"}


def get_dialect(name: str) -> Dialect:
    """The dialect named `name` (the `api` config field)."""
    module = _MODULES.get(name)
    if module is None:
        raise ConfigError("api", f"must be one of {', '.join(_MODULES)}; got {name!r}")
    try:
        mod = importlib.import_module(f"{__name__}.{module}")
    except ModuleNotFoundError:
        raise ConfigError("api", f"the {name!r} dialect is not available in this version") from None
    return mod.DIALECT  # type: ignore[no-any-return]
