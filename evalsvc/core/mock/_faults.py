"""The fault plan: which injected failure, if any, each generation request carries.

Shares are dealt, not drawn: a cycle of `fault_cycle` slots gets round(share * cycle) slots per kind,
the slots are shuffled once with the seed, and request i (in server arrival order) takes slot
i mod cycle. The sequence is periodic, so *any* window of `cycle` consecutive requests holds each slot
exactly once: exact counts at every offset, reproducible from the seed.
"""

from __future__ import annotations

import math
import random

from ..errors import ConfigError

FAULT_KINDS = ("error_500", "error_429", "drop_mid_stream", "malformed_sse", "no_done", "empty_completion")
"""Every fault the mock can inject, by the name of its MockConfig field (and of X-Mock-Fault values)."""


def slot_counts(shares: dict[str, float], cycle: int) -> dict[str, int]:
    """How many of `cycle` slots each fault kind gets.

    Args:
        shares: fault kind -> share of requests in [0, 1].
        cycle: slots in one cycle.

    Returns:
        kind -> slot count (round half up of share * cycle).

    Raises:
        ConfigError: a non-zero share rounds to no slot, or the counts exceed the cycle.
    """
    counts: dict[str, int] = {}
    for kind, share in shares.items():
        count = math.floor(share * cycle + 0.5)
        if share > 0 and count == 0:
            raise ConfigError(kind, f"share {share:g} is less than one request in fault_cycle {cycle}; "
                              "raise fault_cycle or the share")
        counts[kind] = count
    total = sum(counts.values())
    if total > cycle:
        named = ", ".join(k for k, c in counts.items() if c)
        raise ConfigError(next(k for k in reversed(counts) if counts[k]),
                          f"fault shares ({named}) add up to {total / cycle:g}; they must not exceed 1")
    return counts


class FaultPlan:
    """Deals fault kinds (or None) to requests in arrival order; see the module docstring."""

    __slots__ = ("_slots", "_position", "counts")

    def __init__(self, shares: dict[str, float], cycle: int, seed: int) -> None:
        """Args:
            shares: fault kind -> share of requests in [0, 1].
            cycle: period of the plan, in requests.
            seed: seeds the one shuffle of the slots.
        """
        self.counts = slot_counts(shares, cycle)
        slots: list[str | None] = []
        for kind, count in self.counts.items():
            slots.extend([kind] * count)
        slots.extend([None] * (cycle - len(slots)))
        random.Random(seed).shuffle(slots)
        self._slots = slots
        self._position = 0

    def next(self) -> str | None:
        """The fault of the next request, or None for a normal answer."""
        slots = self._slots
        kind = slots[self._position % len(slots)]
        self._position += 1
        return kind

    def peek(self, count: int, start: int = 0) -> list[str | None]:
        """The kinds of requests start .. start+count-1 without consuming them (for tests and reports)."""
        slots = self._slots
        return [slots[i % len(slots)] for i in range(start, start + count)]

    @property
    def position(self) -> int:
        """Requests dealt so far."""
        return self._position

    def reset(self) -> None:
        """Start again at the first slot."""
        self._position = 0
