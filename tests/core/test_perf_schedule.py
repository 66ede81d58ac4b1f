"""Arrival schedules: constant spacing is exact, Poisson is seeded and has the right mean gap."""

from __future__ import annotations

import statistics

import pytest

from evalsvc.core.perf._schedule import arrival_offsets
import itertools


def test_constant_schedule_is_exact() -> None:
    offs = arrival_offsets(200, 100.0, "constant")
    assert offs[0] == 0.0
    assert offs[199] == pytest.approx(1.99)
    gaps = [b - a for a, b in itertools.pairwise(offs)]
    assert all(g == pytest.approx(0.01) for g in gaps)


def test_poisson_mean_gap_within_5_percent_over_2000_arrivals() -> None:
    rate = 100.0
    offs = arrival_offsets(2001, rate, "poisson", seed=42)
    gaps = [b - a for a, b in itertools.pairwise(offs)]
    assert len(gaps) == 2000
    assert statistics.fmean(gaps) == pytest.approx(1 / rate, rel=0.05)
    # exponential gaps: the stdev is about the mean (a constant schedule would give 0)
    assert statistics.stdev(gaps) == pytest.approx(1 / rate, rel=0.15)


def test_poisson_is_reproducible_and_seed_dependent() -> None:
    assert list(arrival_offsets(50, 10.0, seed=1)) == list(arrival_offsets(50, 10.0, seed=1))
    assert list(arrival_offsets(50, 10.0, seed=1)) != list(arrival_offsets(50, 10.0, seed=2))


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        arrival_offsets(10, 0.0)
    with pytest.raises(ValueError):
        arrival_offsets(10, 1.0, "bursty")
