"""What PerfResult and EvalResult have in common, so the two behave alike.

A result has a `status` (a RunStatus), an `error` (why it is not completed, or None), an `output_dir`, a
`to_dict()` (the JSON shape written to summary.json and answered by the service) and a Jupyter view. It is
a read-only mapping of its parts by name: `result["parallel_8_number_100"]` is a perf sweep point's
RunResult, `result["gsm8k"]` an eval dataset's DatasetResult; iterating gives the part names, in run order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from .status import exit_code

P = TypeVar("P")


class ResultBase(Mapping[str, P]):
    """Base of PerfResult and EvalResult (subclasses are dataclasses that declare the fields)."""

    status: str
    error: str | None
    output_dir: str | None

    def _parts(self) -> dict[str, P]:
        """The parts by name (perf: sweep points, eval: datasets)."""
        raise NotImplementedError

    def __getitem__(self, name: str) -> P:
        return self._parts()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts())

    def __len__(self) -> int:
        return len(self._parts())

    def __contains__(self, name: object) -> bool:
        return name in self._parts()

    @property
    def exit_code(self) -> int:
        """The CLI exit code of this outcome (0 completed, 1 failed/incomplete/timeout, 130 stopped)."""
        return exit_code(self.status)

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def _repr_html_(self) -> str:
        raise NotImplementedError
