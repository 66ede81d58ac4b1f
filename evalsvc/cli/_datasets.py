"""`evalsvc datasets prepare` / `evalsvc datasets check`: local copies of benchmarks for offline machines."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..core.errors import EvalsvcError
from ._common import fail

datasets_app = typer.Typer(help="Local copies of benchmarks for offline machines (see docs/datasets.md).",
                           no_args_is_help=True, rich_markup_mode=None)


@datasets_app.command("prepare")
def prepare_command(
    names: Annotated[list[str], typer.Argument(help="Benchmarks to download (names from `evalsvc benchmarks`).",
                                               show_default=False)],
    to: Annotated[str, typer.Option("--to", help="Folder to fill, one sub-folder per benchmark: give it as "
                                    "--dataset-dir on the offline machine.", show_default=False)],
    hub: Annotated[str, typer.Option("--hub", help="modelscope (evalscope's default source), huggingface, or a "
                                     "folder laid out like a hub (<folder>/<dataset id>/).")] = "modelscope",
    json_output: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
) -> None:
    """Download benchmarks into the local layout, on a machine with hub access."""
    from ..core.eval._datasets import prepare_datasets

    def say(line: str) -> None:
        if not json_output:
            print(line, file=sys.stderr)

    try:
        done = prepare_datasets([n for name in names for n in name.split(",") if n], to, hub=hub, on_progress=say)
    except EvalsvcError as exc:
        fail(exc)
    if json_output:
        from ..core._io import dumps

        sys.stdout.write(dumps(done).decode() + "\n")
        return
    for entry in done:
        rows = sum(n for splits in entry["files"].values() for n in splits.values())
        print(f"{entry['name']}: {rows} rows in {len(entry['files'])} config(s) -> {entry['path']} "
              f"(from {entry['source']})")


@datasets_app.command("check")
def check_command(
    folder: Annotated[str, typer.Argument(help="The folder of local copies (what --dataset-dir names).",
                                          show_default=False)],
    names: Annotated[list[str] | None, typer.Argument(help="Benchmarks that must be there (default: every "
                                                      "folder in it).", show_default=False)] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the check as JSON.")] = False,
) -> None:
    """Say, offline, which benchmarks a folder of local copies can run and what is missing (exit 1 if any)."""
    from ..core.eval._datasets import check_datasets

    try:
        entries = check_datasets(folder, [n for name in names or [] for n in name.split(",") if n] or None)
    except EvalsvcError as exc:
        fail(exc)
    if json_output:
        from ..core._io import dumps

        sys.stdout.write(dumps(entries).decode() + "\n")
    else:
        if not entries:
            print(f"{folder}: no benchmark folders")
        for e in entries:
            if e["status"] == "ok":
                subsets = ("subsets from its rows" if e["subsets"] is None
                           else f"{len(e['subsets'])} subset{'s' if len(e['subsets']) != 1 else ''}")
                print(f"ok        {e['name']} ({subsets})")
            else:
                print(f"{e['status']:<9} {e['name']}: {e['problem']}")
    if not entries or any(e["status"] != "ok" for e in entries):
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add the `datasets` command group to the evalsvc app."""
    app.add_typer(datasets_app, name="datasets")
