"""How a config field is declared, once: its type, default, range, choices, help and CLI specifics.

A config class is a frozen dataclass whose fields are made with `field(...)`. Everything else is derived
from those declarations:

- validation (`validate`, run by the class's `__post_init__`; `replace` re-checks only what changed),
- the JSON Schema of the HTTP body (`json_schema`, served in /openapi.json),
- the CLI options of `evalsvc perf` / `evalsvc eval` (evalsvc/cli/_options.py).

Only rules that involve several fields (or evalscope's catalogue) are written by hand, as methods marked
with `@rule("field", ...)`; they run after the per-field checks, and again on `replace` when one of the
fields they read changed.

The type is the field's annotation: `int`, `float`, `str`, `bool`, `X | None`, `list[X]`, `X | list[X]`
(one value or a sweep), `dict[str, X]`. Constraints apply to every number or string inside the value
(list items, dict values), which is also what JSON Schema says for them.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import re
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar, Union

from ._validate import check_type
from .errors import ConfigError

META = "evalsvc"
_NONE = type(None)
INT64 = (-(2**63), 2**63 - 1)  # JSON and SQLite hold 64-bit integers; check_type refuses larger ones

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Range:
    """An interval numbers must fall in (`low`/`high` inclusive unless `*_open`), or one exact value (`const`)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    """Only integers belong to this range."""
    const: float | None = None

    def holds(self, value: float) -> bool:
        if self.const is not None:
            return bool(value == self.const)
        if self.integer and not float(value).is_integer():
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))

    def text(self) -> str:
        if self.const is not None:
            return _num(self.const)
        if self.low is not None and self.high is not None and self.low_open and self.high_open:
            text = f"{'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}{')' if self.high_open else ']'}"
            return f"an integer in {text}" if self.integer else f"in {text}"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {_num(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {_num(self.high)}")
        return ("an integer " if self.integer else "") + " and ".join(parts)

    def violated(self, value: float) -> str:
        """The bound `value` breaks (it does not hold)."""
        if self.const is not None:
            return _num(self.const)
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return f"{'>' if self.low_open else '>='} {_num(self.low)}"
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return f"{'<' if self.high_open else '<='} {_num(self.high)}"
        return "an integer"

    def schema(self) -> dict[str, Any]:
        if self.const is not None:
            return {"const": self.const}
        out: dict[str, Any] = {"type": "integer"} if self.integer else {}
        if self.low is not None:
            out["exclusiveMinimum" if self.low_open else "minimum"] = self.low
        if self.high is not None:
            out["exclusiveMaximum" if self.high_open else "maximum"] = self.high
        return out


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclasses.dataclass(frozen=True)
class Cli:
    """How a field appears on the command line (the flag is `--kebab-case` of the field unless `flag` says)."""

    flag: str | None = None
    """The option name without dashes, e.g. "header" for the `headers` field."""
    short: str | None = None
    """A one-letter alias, e.g. "-d"."""
    envvar: str | None = None
    parse: str | None = None
    """How the text is read: "json" (an object), "header" ('Name: value', repeatable), "names" (words,
    comma- or space-separated, repeatable), "text" (one string as typed, e.g. a path, for a field that also takes
    other shapes from a library); list-or-scalar fields read comma-separated / repeated values."""
    shortcut: bool = False
    """For an option of a nested object (generation_config): also offered as its own flag."""
    hidden: bool = False
    """Not offered on the command line."""


@dataclasses.dataclass(frozen=True)
class Spec:
    """The constraints and documentation of one field (kept in the dataclass field's metadata)."""

    help: str
    ranges: tuple[Range, ...] = ()
    """Every number in the value must be in one of these."""
    choices: tuple[str, ...] | None = None
    """Every string in the value must be one of these."""
    keys: tuple[str, ...] | None = None
    """An object's keys must be among these."""
    pattern: str | None = None
    """Every string in the value must match this regular expression (searched, as JSON Schema does)."""
    pattern_reason: str | None = None
    """What the error says when `pattern` does not match (default: the pattern); `{key}` is the dict key."""
    key_pattern: str | None = None
    key_reason: str | None = None
    min_items: int | None = None
    unique: bool = False
    json: bool = False
    """Must be JSON-serialisable (library callers can pass any object)."""
    url: str | None = None
    """"http": an http(s) URL with a host; "base": the same, without credentials, query or fragment."""
    options: type | None = None
    """A dict whose keys are the fields of this declared dataclass (e.g. generation_config)."""
    secret: bool = False
    """Never shown: redacted in to_dict() / repr, no default shown in --help."""
    redact: Callable[[Any], Any] | None = None
    """How to_dict(redact=True) shows the value (secrets default to "***")."""
    cli: Cli = Cli()


def field(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
          help: str, cli: Cli | None = None, text: bool = False, **constraints: Any) -> Any:
    """Declare a config field. `text=True` is short for "a non-empty string" (pattern `\\S`)."""
    if text:
        constraints.setdefault("pattern", r"\S")
        constraints.setdefault("pattern_reason", "must be a non-empty string")
    if "url" in constraints:
        constraints.setdefault("pattern", url_pattern(constraints["url"]))
    spec = Spec(help=" ".join(help.split()), cli=cli or Cli(), **constraints)
    return dataclasses.field(default=default, default_factory=default_factory, metadata={META: spec})


def derive(cls: type, name: str, default: Any = dataclasses.MISSING, **changes: Any) -> Any:
    """Another config class's declared field `name`, reused with a new default and/or spec `changes`
    (e.g. a different help): the constraints stay the declaration's, so they are written once."""
    spec = {f.name: f for f in dataclasses.fields(cls)}[name].metadata[META]
    if "help" in changes:
        changes["help"] = " ".join(changes["help"].split())
    return dataclasses.field(default=default, metadata={META: dataclasses.replace(spec, **changes)})


def rule(*names: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a method as a cross-field rule reading `names`: it raises ConfigError when they do not agree."""

    def mark(method: Callable[..., None]) -> Callable[..., None]:
        method.__evalsvc_rule__ = names  # type: ignore[attr-defined]
        return method

    return mark


# --- introspection ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Declared:
    """One declared field: its dataclass field, resolved annotation and spec."""

    name: str
    type: Any
    spec: Spec
    field: dataclasses.Field[Any]

    @property
    def required(self) -> bool:
        return self.field.default is dataclasses.MISSING and self.field.default_factory is dataclasses.MISSING

    def default(self) -> Any:
        if self.field.default is not dataclasses.MISSING:
            return self.field.default
        if self.field.default_factory is not dataclasses.MISSING:
            return self.field.default_factory()
        return dataclasses.MISSING


def declared(cls: type) -> dict[str, Declared]:
    """The declared fields of a config class, in declaration order."""
    return _declared(cls)


@functools.cache
def _declared(cls: Any) -> dict[str, Declared]:
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(META)
        if spec is None:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with evalsvc.core.fields.field()")
        out[f.name] = Declared(f.name, hints[f.name], spec, f)
    return out


def _rules(cls: type) -> tuple[tuple[tuple[str, ...], str], ...]:
    return _find_rules(cls)


@functools.cache
def _find_rules(cls: Any) -> tuple[tuple[tuple[str, ...], str], ...]:
    found = []
    for attr in dir(cls):
        names = getattr(getattr(cls, attr, None), "__evalsvc_rule__", None)
        if names is not None:
            found.append((tuple(names), attr))
    return tuple(found)


def nullable(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType) and _NONE in typing.get_args(tp)


def members(tp: Any) -> list[Any]:
    """The non-None members of a union (or [tp])."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        return [a for a in typing.get_args(tp) if a is not _NONE]
    return [tp]


# --- validation ------------------------------------------------------------------------------------------


def check(name: str, value: Any, tp: Any, spec: Spec) -> Any:
    """`value` checked against the declared type and constraints (ints widened to floats where numbers are)."""
    if value is None:
        if nullable(tp) or tp is Any:
            return None
        raise ConfigError(name, "is required")
    if spec.url == "base":
        _check_base_url(name, value)
    value = check_type(name, value, tp)
    if spec.options is not None:
        return _check_options(name, value, spec.options)
    _check_node(name, value, spec)
    if spec.json:
        import orjson

        try:
            orjson.dumps(value)
        except TypeError as exc:
            raise ConfigError(name, f"must be JSON-serialisable ({exc})") from None
    return value


def _check_node(name: str, value: Any, spec: Spec, key: Any = None) -> None:
    if isinstance(value, list):
        if spec.min_items is not None and len(value) < spec.min_items:
            raise ConfigError(name, "must have at least one value, not an empty list" if spec.min_items == 1
                              else f"must have at least {spec.min_items} values")
        if spec.unique and len(set(map(_hashable, value))) != len(value):
            raise ConfigError(name, "repeats a value")
        for item in value:
            _check_node(name, item, spec)
    elif isinstance(value, dict):
        for item_key, item in value.items():
            if spec.keys is not None and item_key not in spec.keys:
                raise ConfigError(name, f"unknown key {item_key!r} (accepted: {', '.join(spec.keys)})")
            if spec.key_pattern is not None and not re.search(spec.key_pattern, item_key):
                raise ConfigError(name, f"{spec.key_reason or 'invalid key'} {item_key!r}")
            if spec.keys is not None or spec.ranges or spec.pattern or spec.choices:
                _check_node(f"{name}.{item_key}" if spec.keys is not None else name, item, spec, item_key)
    elif isinstance(value, bool):
        return
    elif isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(name, f"must be a finite number, got {value!r}")
        if spec.ranges and not any(r.holds(value) for r in spec.ranges):
            if len(spec.ranges) == 1:
                raise ConfigError(name, f"must be {spec.ranges[0].violated(value)}, got {value!r}")
            raise ConfigError(name, f"must be {' or '.join(r.text() for r in spec.ranges)}, got {value!r}")
    elif isinstance(value, str):
        if spec.choices is not None and value not in spec.choices:
            raise ConfigError(name, f"must be one of {', '.join(spec.choices)}; got {value!r}")
        if spec.pattern is not None and not re.search(spec.pattern, value):
            reason = spec.pattern_reason.format(key=key) if spec.pattern_reason else f"must match {spec.pattern}"
            raise ConfigError(name, f"{reason}, got {_show(value)}")


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, (list, dict)) else value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_options(name: str, value: dict[str, Any], options: type) -> dict[str, Any]:
    """A dict of declared options: unknown keys refused, each option checked, defaults filled in."""
    fields = declared(options)
    unknown = sorted(set(value) - set(fields), key=str)
    refused: dict[str, str] = getattr(options, "REFUSED", {})
    for key in unknown:
        if key in refused:  # an option the engine knows that evalsvc does not take, with the reason
            raise ConfigError(f"{name}.{key}", f"not accepted: {refused[key]}")
    if unknown:
        raise ConfigError(f"{name}.{unknown[0]}", f"unknown option (accepted: {', '.join(fields)})")
    missing = [k for k, d in fields.items() if d.required and k not in value]
    if missing:
        raise ConfigError(f"{name}.{missing[0]}", "is required")
    out = {k: d.default() for k, d in fields.items() if not d.required and d.default() is not None}
    for key, option in value.items():
        d = fields[key]
        checked = check(f"{name}.{key}", option, d.type, d.spec)
        if checked is None:
            out.pop(key, None)  # None: unset
        else:
            out[key] = checked
    return out


def validate(obj: Any) -> None:
    """Check every field of a config object and every cross-field rule; store the normalised values."""
    for name, d in declared(type(obj)).items():
        value = getattr(obj, name)
        checked = check(name, value, d.type, d.spec)
        if checked is not value:
            object.__setattr__(obj, name, checked)
    for _names, attr in _rules(type(obj)):
        getattr(obj, attr)()


def replace(obj: T, changes: dict[str, Any]) -> T:
    """A copy of a validated config with `changes`: only the changed fields and the rules reading them are checked."""
    fields = declared(type(obj))
    unknown = sorted(set(changes) - set(fields))
    if unknown:
        raise ConfigError(unknown[0], f"unknown field (accepted: {', '.join(sorted(fields))})")
    new = copy.copy(obj)
    for name, value in changes.items():
        d = fields[name]
        object.__setattr__(new, name, check(name, value, d.type, d.spec))
    for names, attr in _rules(type(obj)):
        if changes.keys() & set(names):
            getattr(new, attr)()
    return new


def from_dict(cls: type[T], data: Any) -> T:
    """Build `cls` from a JSON-like mapping: not an object, unknown or missing fields are ConfigErrors.

    The values are checked once, by the class's own validation.
    """
    if not isinstance(data, dict):
        raise ConfigError("body", f"expected a JSON object, got {_show(data)}")
    fields = declared(cls)
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        raise ConfigError(str(unknown[0]), f"unknown field (accepted: {', '.join(sorted(fields))})")
    for name, d in fields.items():
        if d.required and name not in data:
            raise ConfigError(name, "is required")
    return cls(**data)


def to_dict(obj: Any, *, redact: bool) -> dict[str, Any]:
    """The fields as a JSON-able dict; with `redact`, secrets and secret-bearing values are hidden."""
    data = dataclasses.asdict(obj)
    if redact:
        for name, d in declared(type(obj)).items():
            if data[name] is None:
                continue
            if d.spec.redact is not None:
                data[name] = d.spec.redact(data[name])
            elif d.spec.secret:
                data[name] = "***"
    return data


# --- URLs ------------------------------------------------------------------------------------------------

_H16 = "[0-9A-Fa-f]{1,4}"
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"({_OCTET}\.){{3}}{_OCTET}"
_IPV6 = "|".join([
    f"({_H16}:){{7}}{_H16}", f"({_H16}:){{1,7}}:", f"({_H16}:){{1,6}}:{_H16}",
    *(f"({_H16}:){{1,{n}}}(:{_H16}){{1,{7 - n}}}" for n in range(5, 0, -1)),
    f":((:{_H16}){{1,7}}|:)",
    # IPv4 in the last 32 bits (::ffff:169.254.169.254, 64:ff9b::1.2.3.4)
    rf"(({_H16}:){{6}}|::({_H16}:){{0,5}}|"
    + "|".join(f"({_H16}:){{{n}}}:({_H16}:){{0,{5 - n}}}" for n in range(1, 6)) + f"){_IPV4}",
])
_HOST = rf"(\[({_IPV6})\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)"
_PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
_CHARS = r"[^\s\x00-\x1f\x7f"  # no whitespace or control characters anywhere in a URL


def url_pattern(kind: str) -> str:
    """The regular expression an http(s) URL must match: a host, a valid port, no blanks.

    "http" allows credentials and a query; "base" (an OpenAI base URL) allows neither.
    """
    scheme = "^[Hh][Tt][Tt][Pp][Ss]?://"
    if kind == "base":
        return f"{scheme}{_HOST}(:{_PORT})?(/{_CHARS}?#]*)?$"
    return f"{scheme}({_CHARS}/?#@\\[\\]]*@)?{_HOST}(:{_PORT})?([/?#]{_CHARS}]*)?$"


def _check_base_url(name: str, value: Any) -> None:
    """Say clearly why a base URL with credentials or a query is refused, without echoing it.

    Credentials in the URL turn into Basic auth that replaces the bearer key; a query ends up before
    the path the OpenAI client appends (.../v1/?q=1chat/completions).
    """
    if not isinstance(value, str):
        return
    if "@" in value.split("//", 1)[-1].split("/", 1)[0]:
        raise ConfigError(name, "must not carry credentials (user:password@host); pass the key as api_key, "
                          "it is sent as a bearer token and never written")
    if "?" in value or "#" in value:
        raise ConfigError(name, "must be the base URL without a query or fragment (e.g. http://host:8000/v1): "
                          "/chat/completions is appended to it; pass a key as api_key")


# --- JSON Schema -----------------------------------------------------------------------------------------


def json_schema(cls: type) -> dict[str, Any]:
    """The JSON Schema of a config class's body: its declared fields, types, constraints and defaults."""
    properties = {}
    required = []
    for name, d in declared(cls).items():
        schema = field_schema(d)
        if d.required:
            required.append(name)
        properties[name] = schema
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def field_schema(d: Declared) -> dict[str, Any]:
    schema = type_schema(d.type, d.spec)
    if not d.required:
        schema["default"] = d.default()
    schema["description"] = d.spec.help
    if d.spec.secret:
        schema["writeOnly"] = True
    return schema


def type_schema(tp: Any, spec: Spec) -> dict[str, Any]:
    """The schema of annotation `tp` with the spec's constraints on every number / string / list / object in it."""
    if spec.options is not None:
        props = {}
        for name, d in declared(spec.options).items():
            props[name] = type_schema(d.type, d.spec)
            props[name]["description"] = d.spec.help
            if not d.required and d.default() is not None:
                props[name]["default"] = d.default()
        block: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": props}
        required = [name for name, d in declared(spec.options).items() if d.required]
        if required:
            block["required"] = required
        return {"anyOf": [block, {"type": "null"}]} if nullable(tp) else block
    if tp is Any:
        return {}
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        numeric = [a for a in args if a in (int, float)]
        options = []
        if len(numeric) == 2:  # int | float: any number
            options.append(type_schema(float, spec))
        options += [type_schema(a, spec) for a in args if a is not _NONE and not (len(numeric) == 2 and a in numeric)]
        if _NONE in args:
            options.append({"type": "null"})
        return options[0] if len(options) == 1 else {"anyOf": options}
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        out: dict[str, Any] = {"type": "array", "items": type_schema(inner, spec)}
        if spec.min_items is not None:
            out["minItems"] = spec.min_items
        if spec.unique:
            out["uniqueItems"] = True
        return out
    if origin is dict or tp is dict:
        out = {"type": "object"}
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is not Any:
            out["additionalProperties"] = type_schema(args[1], spec if spec.keys is None else _values_only(spec))
        if spec.keys is not None:
            out["propertyNames"] = {"enum": list(spec.keys)}
        elif spec.key_pattern is not None:
            out["propertyNames"] = {"pattern": spec.key_pattern}
        return out
    if tp is bool:
        return {"type": "boolean"}
    if tp in (int, float):
        out = {"type": "integer", "minimum": INT64[0], "maximum": INT64[1]} if tp is int else {"type": "number"}
        if len(spec.ranges) == 1:
            out.update(spec.ranges[0].schema())
        elif spec.ranges:
            out["anyOf"] = [r.schema() for r in spec.ranges]
        return out
    if tp is str:
        out = {"type": "string"}
        if spec.choices is not None:
            out["enum"] = list(spec.choices)
        if spec.pattern is not None:
            out["pattern"] = spec.pattern
        return out
    return {}


def _values_only(spec: Spec) -> Spec:
    return dataclasses.replace(spec, keys=None, key_pattern=None)
