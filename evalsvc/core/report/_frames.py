"""pandas DataFrames of runs and comparisons. pandas is optional: not a dependency of evalsvc."""

from __future__ import annotations

import importlib
from typing import Any

MESSAGE = "{what} needs pandas, which is not installed: pip install pandas"


def pandas(what: str = "to_frame()") -> Any:
    """The pandas module, or ImportError naming `pip install pandas`."""
    try:
        return importlib.import_module("pandas")
    except ImportError as exc:
        raise ImportError(MESSAGE.format(what=what), name="pandas") from exc


def scalars(d: dict[str, Any]) -> dict[str, Any]:
    """The fields of a dict a table cell can hold (numbers, text, booleans, None)."""
    return {k: v for k, v in d.items() if v is None or isinstance(v, (int, float, str, bool))}
