"""Capacity: the most load a deployment takes within its SLOs (`run_capacity`, `evalsvc capacity`).

`_search` brackets and bisects over concurrency or rate and judges each value by a Wilson interval on its
attainment (`_stats`); `_run` measures each probe with the perf engine, stops probes early, refuses
client-bound probes and writes the run directory; `_result` is what callers get; `_report` adds the probes
and the target line to the perf report.
"""

from ._result import CapacityResult
from ._run import run_capacity, run_capacity_async

__all__ = ["CapacityResult", "run_capacity", "run_capacity_async"]
