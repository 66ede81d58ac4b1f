"""`num_runs`: the spread of a point's headline metrics over its repeated runs.

For each headline metric, over the repeats that measured it (n of them): the mean, the sample standard
deviation (n - 1), the two-sided 95 % confidence interval of the mean from Student's t with n - 1 degrees
of freedom (mean ± t · stdev / √n) and the coefficient of variation (stdev / mean), as vLLM's benchmark
sweeps and AIPerf report them. Fewer than two values: stdev, interval and CV are null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

HEADLINE = ("request_throughput", "output_throughput", "total_throughput", "goodput", "slo_attainment",
            "ttft_ms_mean", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_mean", "itl_ms_mean", "latency_ms_mean",
            "latency_ms_p99")
"""The metrics whose spread over the repeats is reported."""

# two-sided 95 %: the 0.975 quantile of Student's t, degrees of freedom 1..30
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)
_Z975 = 1.959964


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom (table to 30, then the Cornish-Fisher
    expansion around the normal quantile, within 1e-4 there)."""
    if df < 1:
        raise ValueError("df must be >= 1")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


def spread(values: Sequence[float]) -> dict[str, Any]:
    """{"n", "mean", "stdev", "ci95_low", "ci95_high", "cv"} of `values` (null where undefined)."""
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "stdev": None, "ci95_low": None, "ci95_high": None, "cv": None}
    mean = math.fsum(values) / n
    if n < 2:
        return {"n": 1, "mean": mean, "stdev": None, "ci95_low": None, "ci95_high": None, "cv": None}
    stdev = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t975(n - 1) * stdev / math.sqrt(n)
    return {"n": n, "mean": mean, "stdev": stdev, "ci95_low": mean - half, "ci95_high": mean + half,
            "cv": stdev / abs(mean) if mean else None}


def repeats_block(runs: Sequence[dict[str, Any]], asked: int) -> dict[str, Any]:
    """The `repeats` block of a point run `asked` times (`runs`: each run's flat metrics, in order)."""
    return {
        "num_runs": asked,
        "runs_measured": len(runs),
        "metrics": {name: spread([m[name] for m in runs if m.get(name) is not None]) for name in HEADLINE},
        "runs": [{name: m.get(name) for name in ("requests_total", "requests_succeeded", "duration_s", *HEADLINE)}
                 for m in runs],
    }
