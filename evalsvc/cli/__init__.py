"""The `evalsvc` command: one Typer app, one module per command, no logic of its own."""

from __future__ import annotations

import sys
from typing import Annotated

import click
import typer

from .. import __version__
from ..core.errors import EvalsvcError
from ..core.status import ExitCode
from . import _capacity, _compare, _datasets, _eval, _mock, _perf, _report, _runs, _service
from ._common import error_line

try:  # typer >= 0.26 vendors its own click: its exceptions are not the click package's
    from typer._click.exceptions import ClickException as _TyperClickException
    from typer._click.exceptions import UsageError as _TyperUsageError
except ImportError:  # older typer uses click itself
    _TyperClickException = click.ClickException  # type: ignore[misc,assignment]
    _TyperUsageError = click.UsageError  # type: ignore[misc,assignment]

app = typer.Typer(
    name="evalsvc",
    help="Evaluate and load-test LLM endpoints: accuracy on benchmarks and serving performance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain click help: rich's help renderer costs ~110 ms of imports on every `--help` (target: < 0.3 s)
    rich_markup_mode=None,
)
for _module in (_perf, _capacity, _eval, _datasets, _service, _mock, _report, _compare, _runs):
    _module.register(app)


def _print_version(value: bool) -> None:
    if value:
        print(f"evalsvc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print evalsvc's version and exit.", is_eager=True,
                                          callback=_print_version)] = False,
) -> None:
    # A callback keeps `evalsvc <command>` a group even while only one command is registered.
    return None


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one line and exit 2, endpoint failures exit 1, never a traceback.

    The exit codes are evalsvc.core.status's table: a run's status decides it (see EXIT_CODE), an error
    carries its own (`exit_code`, see errors.py), usage errors exit 2 and Ctrl-C 130.

    Bare `evalsvc` prints the help and exits 0, as `evalsvc --help` does.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        rc = app(args=args or ["--help"], standalone_mode=False)
    except (click.UsageError, _TyperUsageError) as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        print(f"Error: {exc.format_message()}{hint}", file=sys.stderr)
        sys.exit(ExitCode.USAGE)
    except (click.ClickException, _TyperClickException) as exc:
        print(f"Error: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, typer.Abort):
        print("Aborted.", file=sys.stderr)
        sys.exit(ExitCode.INTERRUPTED)
    except EvalsvcError as exc:  # raised outside a command's own handling (fail)
        print(error_line(exc), file=sys.stderr)
        sys.exit(exc.exit_code)
    sys.exit(rc if isinstance(rc, int) else ExitCode.OK)
