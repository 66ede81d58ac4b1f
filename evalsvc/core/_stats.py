"""How sure a score is: standard errors and 95 % intervals of means over samples, in one place.

A score is a mean of per-sample values. Its standard error is the sample standard deviation (n - 1 in
the denominator) over sqrt(n), as lm-evaluation-harness and inspect_ai report it. Its 95 % interval:

- values that are all 0 or 1 (accuracy-like): the Wilson score interval, which stays inside [0, 1] and
  keeps its coverage at small n and at p near 0 or 1, where the normal interval does not;
- any other values: a seeded percentile bootstrap of the mean over samples (`RESAMPLES` resamples), so
  the same values always give the same interval.

Across datasets: the micro mean pools every sample (each sample weighs the same); the macro mean averages
the dataset scores (each dataset weighs the same), with stderr sqrt(sum se_i^2) / k and the normal
interval macro +/- 1.96 stderr (kept inside [0, 1] for proportions; one dataset keeps its own interval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Z95 = 1.959963984540054
"""The standard normal's 97.5th percentile."""
RESAMPLES = 2000
"""Bootstrap resamples for an interval of a non-binary mean."""
SEED = 20240601
"""The bootstrap's seed: the same values always give the same interval."""


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion successes / n (n > 0)."""
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def stderr(values: Sequence[float]) -> float | None:
    """Sample standard deviation (n - 1) over sqrt(n); None below 2 values."""
    n = len(values)
    if n < 2:
        return None
    mean = math.fsum(values) / n
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return math.sqrt(var / n)


def bootstrap_mean(values: Sequence[float], *, resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """A seeded percentile-bootstrap 95 % interval of the mean of `values` (at least 1 value)."""
    import numpy as np

    xs = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    n = len(xs)
    means = np.empty(resamples)
    chunk = max(1, min(resamples, 1_000_000 // max(n, 1)))
    for start in range(0, resamples, chunk):
        b = min(chunk, resamples - start)
        means[start:start + b] = xs[rng.integers(0, n, size=(b, n))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def is_binary(values: Sequence[float]) -> bool:
    return all(v in (0, 1) for v in values)


def mean_stats(values: Sequence[float]) -> dict[str, Any]:
    """{"score", "stderr", "ci95": [low, high], "n", "ci_method"} of the mean of per-sample values.

    `ci_method` is "wilson" for 0/1 values, "bootstrap" otherwise; with no value every number is None.
    """
    n = len(values)
    if n == 0:
        return {"score": None, "stderr": None, "ci95": None, "n": 0, "ci_method": None}
    mean = math.fsum(values) / n
    if is_binary(values):
        low, high = wilson(sum(values), n)
        method = "wilson"
    else:
        low, high = bootstrap_mean(values)
        method = "bootstrap"
    err = stderr(values)
    return {"score": mean, "stderr": None if err is None else round(err, 6), "ci95": [round(low, 6), round(high, 6)],
            "n": n, "ci_method": method}


def macro_stats(parts: Sequence[tuple[float, float | None, list[float] | None]]) -> dict[str, Any]:
    """The unweighted mean of k scores given as (score, stderr, ci95), with its stderr and 95 % interval.

    One part keeps its own interval; several get the normal interval, kept inside [0, 1] when every part's
    interval is. The stderr (and interval) is None when any part has none.
    """
    k = len(parts)
    if k == 0:
        return {"score": None, "stderr": None, "ci95": None, "datasets": 0}
    mean = math.fsum(s for s, _, _ in parts) / k
    if any(e is None for _, e, _ in parts):
        return {"score": round(mean, 6), "stderr": None, "ci95": None, "datasets": k}
    err = math.sqrt(math.fsum(e * e for _, e, _ in parts if e is not None)) / k
    if k == 1 and parts[0][2] is not None:
        low, high = parts[0][2]
    else:
        low, high = mean - Z95 * err, mean + Z95 * err
        if all(ci is not None and ci[0] >= 0 and ci[1] <= 1 for _, _, ci in parts):
            low, high = max(0.0, low), min(1.0, high)
    return {"score": round(mean, 6), "stderr": round(err, 6), "ci95": [round(low, 6), round(high, 6)], "datasets": k}
