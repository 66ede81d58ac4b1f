"""Bounded-memory distributions: exact while small, a fine log histogram after.

A `Dist` keeps running moments (count, mean, M2, min, max) exactly, always. Values are kept verbatim up
to `EXACT_LIMIT`; percentiles are then linearly interpolated between order statistics (numpy's default
"linear" method). Past the limit, values fold into log-spaced buckets of relative width `BUCKET_GROWTH - 1`
(0.2 %), and percentiles interpolate inside the bucket, so memory stays bounded whatever the run length.
"""

from __future__ import annotations

import math
from typing import Any
from array import array
from operator import mul as _mul

import numpy as np  # folding into buckets is vectorised; imported here, never first on the hot path

PERCENTILES: tuple[tuple[str, float], ...] = (
    ("min", 0.0), ("p1", 1.0), ("p5", 5.0), ("p10", 10.0), ("p25", 25.0), ("p50", 50.0), ("p75", 75.0),
    ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p99.9", 99.9), ("max", 100.0),
)
EXACT_LIMIT = 200_000
BUCKET_GROWTH = 1.002
_LOG_GROWTH = math.log(BUCKET_GROWTH)
_ZERO_BUCKET = -(1 << 30)  # values <= 0 (e.g. chunks that arrived in the same read) share one bucket
FOLD_BATCH = 65_536


class Dist:
    """A distribution of floats with exact moments and bounded memory."""

    __slots__ = ("count", "total", "total_sq", "low", "high", "_values", "_buckets", "_sorted")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.total_sq = 0.0
        self.low = math.inf
        self.high = -math.inf
        self._values: array[float] = array("d")  # every value (exact mode) or the not-yet-folded ones
        self._buckets: dict[int, int] | None = None  # None while exact
        self._sorted: list[float] | None = None  # cache for repeated percentile queries

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.total_sq += value * value
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value
        self._values.append(value)
        if len(self._values) > (EXACT_LIMIT if self._buckets is None else FOLD_BATCH):
            self._fold()

    def extend(self, values: list[float]) -> None:
        """Add many values; the per-value work runs in C (this is the per-request hot path)."""
        if not values:
            return
        self.count += len(values)
        self.total += sum(values)
        self.total_sq += sum(map(_mul, values, values))
        lo, hi = min(values), max(values)
        if lo < self.low:
            self.low = lo
        if hi > self.high:
            self.high = hi
        self._values.extend(values)
        if len(self._values) > (EXACT_LIMIT if self._buckets is None else FOLD_BATCH):
            self._fold()

    def add_zeros(self, n: int) -> None:
        """Add `n` values of 0.0 at C speed (chunks that arrived in one read have 0 ms gaps)."""
        self.count += n
        if self.low > 0.0:
            self.low = 0.0
        if self.high < 0.0:
            self.high = 0.0
        self._values.frombytes(bytes(8 * n))
        if len(self._values) > (EXACT_LIMIT if self._buckets is None else FOLD_BATCH):
            self._fold()

    def merge(self, other: Dist) -> None:
        """Add every value of `other`."""
        if other.count == 0:
            return
        self.count += other.count
        self.total += other.total
        self.total_sq += other.total_sq
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)
        self._values.extend(other._values)
        if other._buckets is not None:
            if self._buckets is None:
                self._buckets = {}
            for key, c in other._buckets.items():
                self._buckets[key] = self._buckets.get(key, 0) + c
        if len(self._values) > (EXACT_LIMIT if self._buckets is None else FOLD_BATCH):
            self._fold()

    @property
    def exact(self) -> bool:
        return self._buckets is None

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def stdev(self) -> float | None:
        """Sample standard deviation (n - 1); 0.0 for a single value, None for none."""
        if self.count == 0:
            return None
        if self.count == 1:
            return 0.0
        if self._buckets is None:  # exact: two-pass, no cancellation error
            mean = math.fsum(self._values) / self.count
            return math.sqrt(math.fsum((v - mean) ** 2 for v in self._values) / (self.count - 1))
        var = (self.total_sq - self.total * self.total / self.count) / (self.count - 1)
        return math.sqrt(max(var, 0.0))

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0..100), linearly interpolated; None when there is no data."""
        return self._percentiles([q])[0]

    def summary(self) -> dict[str, float | int | None]:
        """min, p1 ... p99.9, max, mean, stdev and count; every value None when there is no data."""
        values = self._percentiles([q for _, q in PERCENTILES])
        out: dict[str, float | int | None] = {name: v for (name, _), v in zip(PERCENTILES, values, strict=True)}
        out["mean"] = self.mean
        out["stdev"] = self.stdev()
        out["count"] = self.count
        return out

    def _percentiles(self, qs: list[float]) -> list[float | None]:
        if self.count == 0:
            return [None for _ in qs]
        if self._buckets is None:
            if self._sorted is None or len(self._sorted) != len(self._values):
                self._sorted = sorted(self._values)
            data = self._sorted
            last = len(data) - 1
            out: list[float | None] = []
            for q in qs:
                pos = last * min(max(q, 0.0), 100.0) / 100.0
                lo = int(pos)
                hi = min(lo + 1, last)
                out.append(data[lo] + (data[hi] - data[lo]) * (pos - lo))
            return out
        self._fold()
        return [self._bucket_percentile(q) for q in qs]

    # -- histogram mode ---------------------------------------------------------------------------
    def _fold(self) -> None:
        """Move pending values into log buckets (vectorised: folding costs ~20 ns a value)."""
        self._sorted = None
        if self._buckets is None:
            self._buckets = {}
        if not self._values:
            return
        arr = np.frombuffer(self._values, dtype=np.float64)
        positive = arr[arr > 0]
        zeros = int(arr.size - positive.size)
        if zeros:
            self._buckets[_ZERO_BUCKET] = self._buckets.get(_ZERO_BUCKET, 0) + zeros
        keys, counts = np.unique(np.floor(np.log(positive) / _LOG_GROWTH).astype(np.int64), return_counts=True)
        for key, c in zip(keys.tolist(), counts.tolist(), strict=True):
            self._buckets[key] = self._buckets.get(key, 0) + c
        del arr, positive
        self._values = array("d")

    def _bucket_percentile(self, q: float) -> float:
        assert self._buckets is not None
        if q <= 0:
            return self.low
        if q >= 100:
            return self.high
        target = (self.count - 1) * q / 100.0  # same rank convention as the exact path
        seen = 0
        for key in sorted(self._buckets):
            c = self._buckets[key]
            if seen + c > target:
                if key == _ZERO_BUCKET:
                    return min(self.low, 0.0)
                lo = BUCKET_GROWTH**key
                frac = (target - seen + 0.5) / c
                value = lo + lo * (BUCKET_GROWTH - 1) * min(max(frac, 0.0), 1.0)
                return min(max(value, self.low), self.high)
            seen += c
        return self.high

    def __getstate__(self) -> tuple[Any, ...]:  # the sort cache is not shipped to other processes
        return (self.count, self.total, self.total_sq, self.low, self.high, self._values.tobytes(), self._buckets)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.count, self.total, self.total_sq, self.low, self.high, raw, self._buckets = state
        self._values = array("d")
        self._values.frombytes(raw)
        self._sorted = None

    def __repr__(self) -> str:
        return f"Dist(count={self.count}, mean={self.mean})"
