"""The statistics of a capacity search: the Wilson interval on a probe's attainment, and the knee.

Wilson score interval (Wilson 1927) for k successes in n trials at confidence c, z = Φ⁻¹((1 + c) / 2):

    centre = (k + z²/2) / (n + z²),  half = z / (n + z²) · sqrt(k (n - k) / n + z²/4)

Unlike the normal approximation it stays inside [0, 1] and is honest at the edges: 100 of 100 requests
meeting the SLO give a lower bound of 0.963 (c = 0.95), not 1. That is what sizes a probe: all of n
requests meeting the SLO prove an attainment of at least `target` only once n >= z² · target / (1 - target)
(73 requests for 0.95).

The knee of the throughput curve (Satopää et al.'s "Kneedle", 2011): the probes sorted by load, load and
throughput each scaled to [0, 1], the knee is the probe farthest above the straight line from the first to
the last one: where more load stops buying proportionally more throughput, and latency starts to pay for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist


def z_of(confidence: float) -> float:
    """The two-sided normal quantile of `confidence` (0.95 -> 1.96)."""
    return NormalDist().inv_cdf((1.0 + confidence) / 2.0)


def wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval of k successes in n trials; (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    z = z_of(confidence)
    z2 = z * z
    centre = (k + z2 / 2.0) / (n + z2)
    half = z / (n + z2) * math.sqrt(k * (n - k) / n + z2 / 4.0)
    return max(0.0, centre - half), min(1.0, centre + half)


def knee(loads: Sequence[float], throughputs: Sequence[float | None]) -> int | None:
    """The index of the knee among points (load, throughput), or None with fewer than three usable points."""
    pts = sorted((x, y, i) for i, (x, y) in enumerate(zip(loads, throughputs, strict=True)) if y is not None)
    if len(pts) < 3:
        return None
    x0, x1 = pts[0][0], pts[-1][0]
    ys = [p[1] for p in pts]
    y0, y1 = min(ys), max(ys)
    if x1 <= x0 or y1 <= y0:
        return None
    best, best_gap = None, 0.0
    for x, y, i in pts:
        xn, yn = (x - x0) / (x1 - x0), (y - y0) / (y1 - y0)
        line = (pts[0][1] - y0) / (y1 - y0) + xn * ((pts[-1][1] - pts[0][1]) / (y1 - y0))
        gap = yn - line
        if gap > best_gap:
            best, best_gap = i, gap
    return best
