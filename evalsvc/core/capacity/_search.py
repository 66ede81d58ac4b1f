"""The search itself, apart from how a probe is measured: bracket, then bisect.

`search(plan, measure)` asks `measure(value, repeat, prior)` for probe runs and judges every value it
probes by the Wilson interval of the pooled attainment (requests meeting every SLO / requests measured):

- the lower bound reaches the target: the value **passes**; the upper bound is below it: it **fails**;
- in between, the value is probed again (`repeat` 1, 2, ...: the runner doubles the requests each time),
  pooled with what was measured before, up to `max_repeats` runs; then the point estimate decides and the
  verdict is marked `decided_by: "estimate"` (not conclusive at the stated confidence).

Bracket: probe `low`; while a value passes, double it (parallel: at least +1), capped at `high`. The
bracket's probes are *scouts* (`repeat` -1: one short run, judged by the interval when it is decisive and
by the estimate otherwise): values below the answer need no proof, and full probes at low concurrency
are the slowest of all. Bisect: between the last passing and the first failing value, probe the middle
with full probes until they are adjacent integers (parallel) or the failing rate is within `precision` of
the passing one (rate). If the answer (or the first failure) then rests on a scout's estimate, that value
is probed in full, and the search goes on from what it shows. A failing `low` means the target is missed
even there (below_range); a passing `high` that the capacity is at least `high` (above_range).

`measure` returns None when the budget is spent; the search then ends with what it knows.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ._stats import wilson

PASS = "pass"
FAIL = "fail"


@dataclass(frozen=True)
class Plan:
    axis: str
    """"parallel" (integers) or "rate"."""
    low: float
    high: float
    target: float
    confidence: float
    max_repeats: int
    precision: float


@dataclass(frozen=True)
class Measured:
    """What one probe run counted: requests measured, and those that succeeded and met every SLO."""

    met: int
    total: int
    key: str = ""
    final: bool = False
    """No further run of this value may follow (e.g. the budget ran out during it)."""


@dataclass
class Verdict:
    """Every run at one value, pooled, and what they say."""

    value: float
    keys: list[str] = field(default_factory=list)
    met: int = 0
    total: int = 0
    low: float = 0.0
    high: float = 1.0
    verdict: str | None = None
    decided_by: str | None = None
    """"interval" (at the stated confidence), "estimate" (the interval still straddled the target after every
    repeat) or "scout" (a bracketing probe's estimate)."""
    superseded: bool = False
    """A scout whose value was then probed in full: the full probe's verdict counts."""

    @property
    def attainment(self) -> float | None:
        return self.met / self.total if self.total else None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "verdict": self.verdict, "decided_by": self.decided_by,
                "attainment": self.attainment, "interval": [self.low, self.high], "requests": self.total,
                "requests_meeting_slo": self.met, "runs": list(self.keys), "superseded": self.superseded}


@dataclass
class Outcome:
    verdicts: list[Verdict] = field(default_factory=list)
    last_pass: Verdict | None = None
    first_fail: Verdict | None = None
    ended: str = "converged"
    """converged | below_range (low fails) | above_range (high passes) | budget"""


Measure = Callable[[float, int, tuple[int, int]], Awaitable[Measured | None]]


class _Budget(Exception):
    pass


async def search(plan: Plan, measure: Measure, on_verdict: Callable[[Verdict, Outcome], None] | None = None,
                 out: Outcome | None = None) -> Outcome:
    """Run the search (see the module docstring); `on_verdict` hears each value as it is judged. The
    verdicts go into `out` as they come, so a caller whose `measure` raises still has them."""
    out = out if out is not None else Outcome()
    passes: list[Verdict] = []

    async def judge(value: float, scout: bool = False) -> Verdict:
        v = Verdict(value)
        out.verdicts.append(v)
        for repeat in range(1 if scout else plan.max_repeats):
            m = await measure(value, -1 if scout else repeat, (v.met, v.total))
            if m is None:
                raise _Budget()
            v.keys.append(m.key)
            v.met += m.met
            v.total += m.total
            v.low, v.high = wilson(v.met, v.total, plan.confidence)
            if v.total and v.low >= plan.target:
                v.verdict, v.decided_by = PASS, "interval"
                break
            if v.total and v.high < plan.target:
                v.verdict, v.decided_by = FAIL, "interval"
                break
            if m.final:
                if v.total == 0:
                    raise _Budget()
                break
        if v.verdict is None:
            v.verdict = PASS if v.total and v.met / v.total >= plan.target else FAIL
            v.decided_by = "scout" if scout else "estimate"
        if v.verdict == PASS:
            passes.append(v)
            if out.last_pass is None or v.value >= out.last_pass.value:
                out.last_pass = v
        elif out.first_fail is None or v.value <= out.first_fail.value:
            out.first_fail = v
        if on_verdict is not None:
            on_verdict(v, out)
        return v

    try:
        value = plan.low
        while True:  # bracket: quick scout probes upwards while the target holds
            v = await judge(value, scout=True)
            if v.verdict == FAIL:
                break
            if value >= plan.high:
                break
            value = min(plan.high, _up(plan, value))
        while True:
            # bisect with full probes between the last passing and the first failing value
            while out.last_pass is not None and out.first_fail is not None:
                mid = _middle(plan, out.last_pass.value, out.first_fail.value)
                if mid is None:
                    break
                await judge(mid)
            lp, ff = out.last_pass, out.first_fail
            if lp is not None and lp.decided_by == "scout":
                # the answer rests on a scout's estimate: probe it in full (a failure moves the search down)
                passes.remove(lp)  # it stays among the verdicts (it was probed), superseded
                lp.superseded = True
                out.last_pass = max(passes, key=lambda p: p.value) if passes else None
                await judge(lp.value)
            elif ff is not None and ff.decided_by == "scout":
                # so does the first failure (a scout short of proof either way): probe it in full
                ff.superseded = True
                fails = [v for v in out.verdicts if v.verdict == FAIL and not v.superseded]
                out.first_fail = min(fails, key=lambda f: f.value) if fails else None
                await judge(ff.value)
            else:
                break
        if out.last_pass is None:
            out.ended = "below_range"
        elif out.first_fail is None:
            out.ended = "above_range"
        return out
    except _Budget:
        out.ended = "budget"
        return out


def _up(plan: Plan, value: float) -> float:
    return float(max(value + 1, 2 * value)) if plan.axis == "parallel" else 2 * value


def _middle(plan: Plan, good: float, bad: float) -> float | None:
    """The next value to probe between a passing and a failing one; None once they are close enough."""
    if plan.axis == "parallel":
        if bad - good <= 1:
            return None
        return float(math.floor((good + bad) / 2))
    if bad <= good * (1 + plan.precision):
        return None
    mid = float(f"{(good + bad) / 2:.3g}")  # keys stay readable: rate_19.5_number_...
    if not good < mid < bad:
        mid = (good + bad) / 2
    return mid
