"""The capacity search's logic on fake probes with a known threshold: bracket, bisect, repeats, budget, Wilson."""

from __future__ import annotations

import asyncio
import random

import pytest

from evalsvc.core.capacity._search import FAIL, PASS, Measured, Plan, search
from evalsvc.core.capacity._stats import knee, wilson, z_of


def plan(axis: str = "parallel", low: float = 1, high: float = 256, **kw: float) -> Plan:
    base = dict(target=0.95, confidence=0.95, max_repeats=3, precision=0.05)
    base.update(kw)
    return Plan(axis, low, high, **base)  # type: ignore[arg-type]


def threshold(cap: float, *, calls: list[tuple[float, int]] | None = None, budget: int | None = None,
              share: float = 1.0, rng: random.Random | None = None):  # type: ignore[no-untyped-def]
    """A fake probe: values <= cap meet the SLO (a `share` of requests, drawn with `rng`), above it none do."""

    async def measure(value: float, repeat: int, prior: tuple[int, int]) -> Measured | None:
        if calls is not None:
            if budget is not None and len(calls) >= budget:
                return None
            calls.append((value, repeat))
        n = 20 if repeat < 0 else 100 * 2**repeat
        if value > cap:
            return Measured(0, n, f"v{value}_r{repeat}")
        met = n if rng is None else sum(rng.random() < share for _ in range(n))
        return Measured(met, n, f"v{value}_r{repeat}")

    return measure


@pytest.mark.parametrize("cap", [1, 2, 5, 16, 17, 63, 64, 100, 255])
def test_parallel_search_finds_every_threshold(cap: int) -> None:
    calls: list[tuple[float, int]] = []
    out = asyncio.run(search(plan(), threshold(cap, calls=calls)))
    assert out.ended == "converged"
    assert out.last_pass is not None and out.last_pass.value == cap and out.last_pass.decided_by == "interval"
    assert out.first_fail is not None and out.first_fail.value == cap + 1
    # bracket by doubling, then bisect: logarithmic in the range, not a sweep of every value
    assert len(calls) <= 2 * 9 + 2
    # the answer was probed in full, not only scouted; the first failure is proven by its interval
    assert cap in {v for v, r in calls if r >= 0}
    assert out.first_fail.decided_by == "interval"


def test_range_edges() -> None:
    below = asyncio.run(search(plan(low=4), threshold(2)))
    assert below.ended == "below_range" and below.last_pass is None and below.first_fail.value == 4  # type: ignore[union-attr]
    above = asyncio.run(search(plan(high=32), threshold(1000)))
    assert above.ended == "above_range" and above.last_pass.value == 32 and above.first_fail is None  # type: ignore[union-attr]
    assert above.last_pass.decided_by == "interval"  # type: ignore[union-attr]
    exact = asyncio.run(search(plan(low=8, high=8), threshold(8)))
    assert exact.ended == "above_range" and exact.last_pass.value == 8  # type: ignore[union-attr]


def test_rate_search_stops_within_precision() -> None:
    out = asyncio.run(search(plan("rate", precision=0.05), threshold(39.0)))
    assert out.ended == "converged"
    lp, ff = out.last_pass.value, out.first_fail.value  # type: ignore[union-attr]
    assert lp <= 39.0 < ff and ff <= lp * 1.05


def test_straddling_probe_is_repeated_then_decided_by_its_estimate() -> None:
    # at the answer value, exactly 96 % of requests meet the SLO: 96 of 100 straddles 0.95, and so do the
    # pooled 288 of 300 and 672 of 700; the point estimate then decides, and says so
    async def measure(value: float, repeat: int, prior: tuple[int, int]) -> Measured:
        n = 20 if repeat < 0 else 100 * 2**repeat
        if value <= 8:
            return Measured(n, n, f"{value}/{repeat}")
        if value <= 10:
            return Measured(round(0.96 * n), n, f"{value}/{repeat}")
        return Measured(0, n, f"{value}/{repeat}")

    out = asyncio.run(search(plan(high=64), measure))
    ten = [v for v in out.verdicts if v.value == 10]
    assert ten and ten[0].verdict == PASS and ten[0].decided_by == "estimate" and len(ten[0].keys) == 3
    assert ten[0].total == 700 and ten[0].low < 0.95 <= ten[0].high
    assert out.last_pass.value == 10 and out.first_fail.value == 11  # type: ignore[union-attr]


def test_a_scout_that_fails_when_probed_in_full_moves_the_search_down() -> None:
    # scouts are short: at 16, 20 requests all met; the full probe shows 90 %, a clear failure
    async def measure(value: float, repeat: int, prior: tuple[int, int]) -> Measured:
        n = 20 if repeat < 0 else 100 * 2**repeat
        if value <= 12 or (value <= 16 and repeat < 0):
            return Measured(n, n, f"{value}/{repeat}")
        return Measured(round(0.5 * n), n, f"{value}/{repeat}")

    out = asyncio.run(search(plan(high=64), measure))
    assert out.last_pass.value == 12 and out.first_fail.value == 13  # type: ignore[union-attr]
    assert out.last_pass.decided_by == "interval"  # type: ignore[union-attr]


def test_budget_ends_the_search_with_what_it_knows() -> None:
    calls: list[tuple[float, int]] = []
    out = asyncio.run(search(plan(), threshold(100, calls=calls, budget=7)))
    assert out.ended == "budget" and len(calls) == 7
    assert out.last_pass is not None and out.last_pass.value == 64  # a lower bound only


def test_noisy_probes_still_land_next_to_the_threshold() -> None:
    rng = random.Random(7)
    out = asyncio.run(search(plan(high=128), threshold(40, share=0.995, rng=rng)))
    assert out.last_pass.value == 40 and out.first_fail.value == 41  # type: ignore[union-attr]


def test_wilson_interval() -> None:
    assert z_of(0.95) == pytest.approx(1.959964, abs=1e-5)
    low, high = wilson(100, 100, 0.95)
    assert low == pytest.approx(0.963, abs=1e-3) and high == 1.0
    low, high = wilson(50, 100, 0.95)  # textbook: 0.4038 .. 0.5962
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    assert wilson(0, 0, 0.95) == (0.0, 1.0)
    # 73 requests all meeting the SLO are the fewest that prove 0.95 at 95 % confidence
    assert wilson(73, 73, 0.95)[0] >= 0.95 > wilson(72, 72, 0.95)[0]


def test_knee_of_a_saturating_curve() -> None:
    loads = [1, 2, 4, 8, 16, 32, 64]
    tput = [2.4, 4.8, 9.7, 19.4, 38.9, 39.0, 39.1]  # linear up to 16, flat after
    assert knee(loads, tput) == 4
    assert knee([1, 2], [1.0, 2.0]) is None
    assert knee([1, 2, 3], [1.0, None, 3.0]) is None
    assert FAIL != PASS
