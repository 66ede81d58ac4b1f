"""Distributions: interpolated percentiles, bounded memory, merging, null for no data."""

from __future__ import annotations

import random

import numpy as np
import pytest

from evalsvc.core.perf import _stats
from evalsvc.core.perf._stats import PERCENTILES, Dist


def test_exact_percentiles_match_linear_interpolation() -> None:
    values = [random.Random(1).uniform(0, 100) for _ in range(1001)]
    d = Dist()
    d.extend(values)
    summary = d.summary()
    for name, q in PERCENTILES:
        assert summary[name] == pytest.approx(float(np.percentile(values, q)), rel=1e-12)
    assert summary["mean"] == pytest.approx(float(np.mean(values)))
    assert summary["stdev"] == pytest.approx(float(np.std(values, ddof=1)))
    assert summary["count"] == 1001


def test_known_small_set() -> None:
    d = Dist()
    for v in (10.0, 20.0, 30.0, 40.0):
        d.add(v)
    assert d.percentile(50) == 25.0  # interpolated, not nearest-rank
    assert d.percentile(0) == 10.0 and d.percentile(100) == 40.0
    assert d.summary()["p25"] == 17.5


def test_no_data_is_null_everywhere() -> None:
    summary = Dist().summary()
    assert summary["count"] == 0
    assert all(summary[k] is None for k in summary if k != "count")


def test_single_value_has_zero_stdev() -> None:
    d = Dist()
    d.add(5.0)
    assert d.stdev() == 0.0 and d.percentile(99) == 5.0


def test_histogram_mode_stays_bounded_and_accurate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_stats, "EXACT_LIMIT", 1000)
    monkeypatch.setattr(_stats, "FOLD_BATCH", 500)
    rng = random.Random(7)
    values = [rng.expovariate(1 / 50.0) for _ in range(50_000)] + [0.0] * 100
    d = Dist()
    for v in values[:100]:
        d.add(v)
    d.extend(values[100:])
    assert not d.exact
    assert len(d._values) <= 500 and len(d._buckets or {}) < 10_000
    for q in (1, 25, 50, 90, 99, 99.9):
        assert d.percentile(q) == pytest.approx(float(np.percentile(values, q)), rel=0.005, abs=1e-9)
    assert d.percentile(0) == 0.0 and d.percentile(100) == max(values)
    assert d.mean == pytest.approx(float(np.mean(values)))
    assert d.stdev() == pytest.approx(float(np.std(values, ddof=1)), rel=1e-6)


def test_merge_equals_one_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(3)
    a_vals = [rng.uniform(1, 9) for _ in range(300)]
    b_vals = [rng.uniform(5, 20) for _ in range(200)]
    a, b, both = Dist(), Dist(), Dist()
    a.extend(a_vals)
    b.extend(b_vals)
    both.extend(a_vals + b_vals)
    a.merge(b)
    assert a.summary() == pytest.approx(both.summary())
    monkeypatch.setattr(_stats, "EXACT_LIMIT", 100)  # merging into histogram mode keeps counts exact
    c = Dist()
    c.extend(a_vals)
    c.merge(b)
    assert c.count == 500 and c.percentile(50) == pytest.approx(both.percentile(50), rel=0.01)


def test_pickles_for_client_processes() -> None:
    import pickle

    d = Dist()
    d.extend([1.0, 2.0, 3.0])
    e = pickle.loads(pickle.dumps(d))
    assert e.summary() == d.summary()


def test_zeros_added_in_bulk_equal_zeros_added_one_by_one() -> None:
    bulk, single = Dist(), Dist()
    for d in (bulk, single):
        d.extend([5.0, 7.0])
    bulk.add_zeros(3)
    single.extend([0.0, 0.0, 0.0])
    assert bulk.summary() == single.summary()
