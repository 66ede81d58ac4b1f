"""Helpers shared by the CLI commands: parsing list flags and reporting errors."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

from ..core.errors import ConfigError, EvalsvcError


def error_line(exc: EvalsvcError) -> str:
    """The one line the CLI prints for an error: `Type: message`."""
    return f"{type(exc).__name__}: {exc}"


def fail(exc: EvalsvcError) -> NoReturn:
    """Print the error's line on stderr and exit with its code (2 user error, 1 endpoint failure)."""
    print(error_line(exc), file=sys.stderr)
    raise typer.Exit(code=exc.exit_code)


def parse_json_option(name: str, text: str | None) -> object:
    """Parse a JSON-valued flag (e.g. --slo '{"ttft_ms": 500}')."""
    if text is None:
        return None
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(name, f"is not valid JSON ({exc.msg} at column {exc.colno})") from None
