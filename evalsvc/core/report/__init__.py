"""HTML reports of runs: templates (Jinja2) and chart specs (Plotly), self-contained pages; comparing and
listing runs (`compare`, `runs`).

The page builders import plotly and jinja2 when first used, so `evalsvc runs` and `evalsvc compare --no-html`
do not pay for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ._eval import build_eval_report
    from ._perf import build_perf_report
    from .runs import list_runs

__all__ = ["build_eval_report", "build_perf_report", "build_report", "list_runs"]


def __getattr__(name: str) -> Any:
    if name == "build_eval_report":
        from ._eval import build_eval_report
        return build_eval_report
    if name == "build_perf_report":
        from ._perf import build_perf_report
        return build_perf_report
    if name == "list_runs":
        from .runs import list_runs
        return list_runs
    raise AttributeError(name)


def build_report(run_dir: str | Path) -> Path:
    """(Re)build report.html of a perf or an eval run directory, whichever it is; returns its path.

    Raises:
        ConfigError: `run_dir` is neither.
    """
    from ._eval import build_eval_report, is_eval_run
    from ._perf import build_perf_report

    if is_eval_run(run_dir):
        return build_eval_report(run_dir)
    from ..capacity._report import build_capacity_report, is_capacity_run

    if is_capacity_run(run_dir):
        return build_capacity_report(run_dir)
    try:
        return build_perf_report(run_dir)
    except ConfigError as exc:
        if not Path(run_dir).is_dir():
            raise
        raise ConfigError("DIR", f"{str(run_dir)!r} is not a perf or eval run directory (it needs the config.json "
                                 "and summary.json that `evalsvc perf` or `evalsvc eval` writes)") from exc
