"""When requests go out. A schedule decides only send times; the engine does the sending.

Open loop (`rate` > 0): arrival offsets are precomputed from a seeded generator and the engine sleeps
until each absolute deadline (never accumulating relative sleeps, so timer rounding cannot drift the
achieved rate). Closed loop (`rate` = -1): no schedule, `parallel` workers send back to back.
"""

from __future__ import annotations

import random
from array import array


def arrival_offsets(count: int, rate: float, arrival: str = "poisson", seed: int = 42) -> array[float]:
    """Seconds from the run's start at which each of `count` requests is due.

    Args:
        count: number of arrivals.
        rate: mean arrivals per second (> 0).
        arrival: "poisson" (exponential gaps, seeded) or "constant" (gaps of exactly 1/rate).
        seed: seeds the Poisson gaps; the same seed gives the same schedule.

    Returns:
        Non-decreasing offsets; the first arrival is at 0.
    """
    if rate <= 0:
        raise ValueError("rate must be > 0 for a schedule")
    out = array("d", bytes(8 * count)) if count else array("d")
    if arrival == "constant":
        step = 1.0 / rate
        for i in range(count):
            out[i] = i * step
        return out
    if arrival != "poisson":
        raise ValueError(f"unknown arrival process {arrival!r}")
    rng = random.Random(seed)
    t = 0.0
    for i in range(count):
        out[i] = t
        t += rng.expovariate(rate)
    return out
