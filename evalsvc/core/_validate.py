"""Field checks shared by every config: one place decides what a valid value is."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, TypeVar, Union

from ._secrets import has_key
from .errors import ConfigError

T = TypeVar("T")

_NONE = type(None)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not _NONE)
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        plural = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}
        return f"a list of {plural.get(inner, _type_name(inner))}"
    if origin is dict or tp is dict:
        return "an object"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def check_type(field: str, value: Any, tp: Any) -> Any:
    """Return `value` if it matches the annotation `tp` (ints are accepted where numbers are), else raise."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and _NONE in args:
            return None
        if len(args) == 2 and _NONE in args:  # X | None: X's own, more precise, error
            return check_type(field, value, args[0] if args[1] is _NONE else args[1])
        for arg in args:
            if arg is _NONE:
                continue
            try:
                return check_type(field, value, arg)
            except ConfigError:
                continue
        raise ConfigError(field, f"expected {_type_name(tp)}, got {_show(value)}")
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(field, f"expected {_type_name(tp)}, got {_show(value)}")
        return [check_type(f"{field}[{i}]", v, inner) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(field, f"expected an object, got {_show(value)}")
        args = typing.get_args(tp)
        if len(args) == 2:  # dict[K, V]: each value too (a header that is not a string fails here, not mid-run)
            return {k: check_type(f"{field}.{k}", v, args[1]) for k, v in value.items()}
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if not -(2**63) <= value < 2**63:  # JSON and SQLite hold 64-bit integers; nothing needs more
                raise ConfigError(field, f"is out of range, got {_show(value)}")
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        return value
    raise ConfigError(field, f"expected {_type_name(tp)}, got {_show(value)}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def from_mapping(cls: type[T], data: Any, *, name: str = "body") -> T:
    """Build the dataclass `cls` from a JSON-like mapping: unknown fields and wrong types are ConfigErrors."""
    if not isinstance(data, dict):
        raise ConfigError(name, f"expected a JSON object, got {_show(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(unknown[0], f"unknown field (accepted: {', '.join(sorted(fields))})")
    kwargs = {key: check_type(key, value, hints[key]) for key, value in data.items()}
    missing = [
        f.name
        for f in fields.values()
        if f.name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(missing[0], "is required")
    return cls(**kwargs)


# HTTP header names are RFC 9110 tokens; values are latin-1 text without line breaks or other control
# characters (tab allowed). The same patterns validate PerfConfig.headers and appear in its JSON Schema.
HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
HEADER_VALUE = r"^[\t\x20-\x7e\x80-\xff]*$"


def require_headers(field: str, headers: dict[str, str] | None) -> None:
    """HTTP header names and values that can go on the wire as they are."""
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not re.search(HEADER_NAME, name):
            raise ConfigError(field, f"invalid header name {name!r}")
        if not isinstance(value, str) or not re.search(HEADER_VALUE, value):
            raise ConfigError(field, f"header {name!r} must be latin-1 text without line breaks")


def require_text(field: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(field, "is required and must be a non-empty string")


def require_range(field: str, value: float | None, *, low: float | None = None, high: float | None = None,
                  low_open: bool = False, allow_none: bool = False) -> None:
    if value is None:
        if allow_none:
            return
        raise ConfigError(field, "is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ConfigError(field, f"must be a number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ConfigError(field, f"must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if high is not None and value > high:
        raise ConfigError(field, f"must be <= {high:g}, got {value!r}")


def redact_secret(value: str | None) -> str | None:
    """What is shown in place of an API key: never the key, but whether one was set."""
    if value is None:
        return None
    if not has_key(value):  # "" or the "EMPTY" placeholder: shown as is
        return value
    return "***"
