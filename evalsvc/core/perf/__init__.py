"""The load generator: `run_perf` / `run_perf_async` and their result types.

Roles are kept apart: `_schedule` decides send times, `_sender` sends one request and parses its
response through a dialect (`dialects/`), `_metrics` / `_stats` aggregate, `_engine` runs a sweep point
(in one process or sharded over several), `_run` runs the sweep and writes outputs, `_result` is what
callers get back.
"""

from ._result import PerfResult, RunResult
from ._run import run_perf, run_perf_async

__all__ = ["PerfResult", "RunResult", "run_perf", "run_perf_async"]
