"""Placeholder until this command lands: it registers nothing."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    return None
