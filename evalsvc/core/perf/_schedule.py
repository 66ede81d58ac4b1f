"""When requests go out. A schedule decides only send times; the engine does the sending.

Open loop (`rate` > 0, or a trace): arrival offsets are precomputed here and the engine sleeps until each
absolute deadline (never accumulating relative sleeps, so timer rounding cannot drift the achieved rate).
Closed loop (`rate` = -1): no schedule, `parallel` workers send back to back.

Every generated schedule is built the same way: arrivals of a process with mean gap 1 are drawn in
"operational time" s (constant: gaps of exactly 1; poisson: exponential gaps; gamma: gamma gaps of shape
`burstiness` and scale 1/burstiness, as vLLM's `--burstiness`), then mapped to seconds by the inverse of the
cumulative rate Λ(t) = ∫ rate. At a fixed rate r that is t = s / r. A ramp (`rate_start` r0 → `rate` r1)
is a rate rising linearly in time over T = 2N / (r0 + r1) seconds, the span in which N requests arrive on
average, then staying at r1: Λ(t) = r0·t + (r1 − r0)·t² / (2T), inverted in closed form. For poisson this
is exactly a non-homogeneous Poisson process with that rate.
"""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Iterable, Sequence


def arrival_offsets(count: int, rate: float, arrival: str = "poisson", seed: int = 42, *,
                    burstiness: float = 1.0, rate_start: float | None = None) -> array[float]:
    """Seconds from the run's start at which each of `count` requests is due.

    Args:
        count: number of arrivals.
        rate: mean arrivals per second (> 0); with `rate_start`, the rate the ramp reaches.
        arrival: "poisson" (exponential gaps, seeded), "constant" (gaps of exactly 1/rate) or "gamma"
            (gamma gaps of shape `burstiness`, mean 1/rate, seeded).
        seed: seeds the random gaps; the same seed gives the same schedule.
        burstiness: the gamma shape (> 0): < 1 burstier than poisson, 1 = poisson, > 1 more even.
        rate_start: when given (>= 0), the rate at 0 s; it changes linearly to `rate` over the run.

    Returns:
        Non-decreasing offsets; the first arrival is at 0.
    """
    if rate <= 0:
        raise ValueError("rate must be > 0 for a schedule")
    if burstiness <= 0:
        raise ValueError("burstiness must be > 0")
    if rate_start is not None and rate_start < 0:
        raise ValueError("rate_start must be >= 0")
    out = array("d", bytes(8 * count)) if count else array("d")
    units: Iterable[float]
    if arrival == "constant":
        units = (float(i) for i in range(count))
    elif arrival in ("poisson", "gamma"):
        units = _random_units(count, random.Random(seed), 1.0 if arrival == "poisson" else burstiness)
    else:
        raise ValueError(f"unknown arrival process {arrival!r}")
    if rate_start is None or rate_start == rate:
        for i, s in enumerate(units):
            out[i] = s / rate
        return out
    r0, r1 = float(rate_start), float(rate)
    span = 2.0 * count / (r0 + r1)  # T: N arrivals expected within it
    half_slope = (r1 - r0) / (2.0 * span)  # a in Λ(t) = r0 t + a t²
    for i, s in enumerate(units):
        if s <= count:
            # the root of a t² + r0 t - s = 0 in its cancellation-free form (a may be 0 or negative)
            out[i] = 2.0 * s / (r0 + math.sqrt(max(0.0, r0 * r0 + 4.0 * half_slope * s))) if s else 0.0
        else:  # past T the rate stays at r1
            out[i] = span + (s - count) / r1
    return out


def _random_units(count: int, rng: random.Random, shape: float) -> list[float]:
    """Arrival times of a renewal process with mean gap 1 (exponential when shape = 1), the first at 0."""
    out = []
    s = 0.0
    if shape == 1.0:
        for _ in range(count):
            out.append(s)
            s += rng.expovariate(1.0)
    else:
        scale = 1.0 / shape
        for _ in range(count):
            out.append(s)
            s += rng.gammavariate(shape, scale)
    return out


def trace_offsets(timestamps_ms: Sequence[float], speed: float = 1.0) -> array[float]:
    """A trace's own schedule: each request at (timestamp − the first one) / speed, in seconds.

    Timestamps must be non-decreasing (the trace loader checks); `speed` 2 replays twice as fast.
    """
    if speed <= 0:
        raise ValueError("speed must be > 0")
    if not timestamps_ms:
        return array("d")
    first = timestamps_ms[0]
    scale = 1.0 / (1000.0 * speed)
    return array("d", ((t - first) * scale for t in timestamps_ms))
