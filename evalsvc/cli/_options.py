"""CLI options generated from the config field declarations (evalsvc.core.fields): one flag per field.

The flag is `--kebab-case` of the field (or its declared `Cli.flag`), its help and default are the
declaration's; booleans get `--x/--no-x`, list-or-scalar fields read comma-separated or repeated values,
object fields read JSON (or 'Name: value' for headers), secrets read an environment variable.
A command gets its options with `config_parameters(Config)` and turns what the user typed back into
config fields with `config_values(Config, options)`; the config's own validation does the rest.
"""

from __future__ import annotations

import inspect
import typing
from typing import Annotated, Any

import typer

from ..core.errors import ConfigError
from ..core.fields import Declared, declared, members
from ._common import parse_json_option

_LIST_HELP = "One value, or several (comma-separated or repeated) to sweep."


def flag_name(d: Declared) -> str:
    return d.spec.cli.flag or d.name.replace("_", "-")


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _parameter(name: str, d: Declared, *, help_prefix: str = "", shortcut: bool = False) -> inspect.Parameter:
    spec, cli = d.spec, d.spec.cli
    flag = f"--{flag_name(d)}"
    decls = [flag] + ([f"-{cli.short}"] if cli.short else [])
    help_text = help_prefix + spec.help
    default = None if d.required else d.default()
    required = " (required)" if d.required else ""
    kinds = members(d.type)
    option: Any
    if cli.parse == "text":  # one string as typed (a path), whatever else the field accepts from a library
        option = typer.Option(*decls, help=help_text + required, show_default=False, envvar=cli.envvar)
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                 annotation=Annotated[str | None, option])
    if d.type is bool:
        option = typer.Option(f"{flag}/--no-{flag_name(d)}", help=help_text)
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                 annotation=Annotated[bool, option])
    if cli.parse in ("json", "header", "names") or any(typing.get_origin(k) is list for k in kinds):
        repeated = cli.parse in ("header", "names") or cli.parse is None
        if cli.parse is None:
            help_text += f" {_LIST_HELP}"
        elif cli.parse == "names":
            help_text += " Repeat the flag or separate names with commas: `-d gsm8k,iquiz`."
        if default not in (None, {}) and cli.parse != "json":
            help_text += f" (default {_shown(default)})"
        annotation = list[str] | None if repeated else str | None
        metavar = {"json": "JSON", "header": "'NAME: VALUE'", "names": "NAME"}.get(cli.parse or "", "VALUE[,VALUE...]")
        option = typer.Option(*decls, help=help_text + required, show_default=False, envvar=cli.envvar,
                              metavar=metavar)
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                 annotation=Annotated[annotation, option])
    scalar = kinds[0] if len(kinds) == 1 else str  # int | float (a count or a fraction): parsed below
    if shortcut and default is not None:  # a shortcut only overrides the object's option when given
        help_text += f" (default {_shown(default)})"
    if spec.secret or shortcut:  # a secret's default is never shown
        default = None
    option = typer.Option(*decls, help=help_text + required, show_default=default is not None, envvar=cli.envvar,
                          show_envvar=cli.envvar is not None, metavar="NUMBER" if len(kinds) > 1 else None)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[scalar | None, option])


def config_parameters(cls: type) -> list[inspect.Parameter]:
    """One keyword parameter (with its typer.Option) per declared field of `cls`, plus option shortcuts."""
    out = []
    for d in declared(cls).values():
        if d.spec.cli.hidden:
            continue
        out.append(_parameter(d.name, d))
        if d.spec.options is not None:
            for o in declared(d.spec.options).values():
                if o.spec.cli.shortcut:
                    out.append(_parameter(f"{d.name}__{o.name}", o, help_prefix=f"{d.name}.{o.name}: ",
                                          shortcut=True))
    return out


def config_values(cls: type, options: dict[str, Any]) -> dict[str, Any]:
    """The config fields the user gave (parsed from their flag text); fields left out keep their defaults.

    Raises:
        ConfigError: a required field is missing, or a value cannot be read (not JSON, not a number, ...).
    """
    out: dict[str, Any] = {}
    for d in declared(cls).values():
        if d.spec.cli.hidden:
            continue
        raw = options.get(d.name)
        if raw is None or raw == []:
            if d.required:
                raise ConfigError(d.name, f"is required (--{flag_name(d)})")
            value = None
        else:
            value = _parse(d, raw)
        if d.spec.options is not None:
            given = {o.name: options[f"{d.name}__{o.name}"] for o in declared(d.spec.options).values()
                     if options.get(f"{d.name}__{o.name}") is not None}
            if given:
                if value is None:
                    value = {}
                if isinstance(value, dict):
                    value = {**value, **given}
        if value is not None:
            out[d.name] = value
    return out


def _parse(d: Declared, raw: Any) -> Any:
    parse = d.spec.cli.parse
    if parse == "text":
        return raw
    if parse == "json":
        return parse_json_option(d.name, raw)
    if parse == "header":
        return _headers(raw)
    if parse == "names":
        return [word for text in raw for word in text.replace(",", " ").split()]
    kinds = members(d.type)
    lists = [k for k in kinds if typing.get_origin(k) is list]
    if lists:
        (inner,) = typing.get_args(lists[0])
        values = [_number(d.name, piece.strip(), inner) for chunk in raw for piece in chunk.split(",")
                  if piece.strip()]
        scalar_too = len(lists) < len(kinds)  # `X | list[X]`: one value is given as X
        return values[0] if len(values) == 1 and scalar_too else values
    if len(kinds) > 1 and isinstance(raw, str):  # int | float: a count or a fraction
        return _number(d.name, raw, float)
    return raw


def _number(name: str, text: str, cast: Any) -> Any:
    if cast not in (int, float):
        return text
    try:
        value = float(text) if cast is float else int(text)
    except ValueError:
        raise ConfigError(name, f"expected {'an integer' if cast is int else 'a number'}, got {text!r}") from None
    if isinstance(value, float) and value.is_integer() and cast is float and "." not in text and "e" not in text:
        return int(value)
    return value


def _headers(raw: list[str]) -> dict[str, str]:
    out = {}
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ConfigError("header", f"expected 'Name: value', got {item!r}")
        out[name.strip()] = value.strip()
    return out
