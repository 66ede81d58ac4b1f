"""SLOs and goodput, counted per request in O(1) as the run goes.

A request meets the SLOs when it succeeded and every threshold given holds: ttft_ms, tpot_ms and
latency_ms (the SPEC §4 definitions) each <= its limit. Failed requests never meet them, so
`slo_attainment` is the share of *all* requests of the run that met every SLO, and `goodput` is those
requests per second over the same duration as request_throughput.

A request without a TPOT (fewer than two output tokens, or a non-streamed run) has no time between
tokens that could break a TPOT limit: it meets the TPOT SLO, and its TTFT and latency limits still apply
(vLLM's goodput counts one-token outputs the same way). A non-streamed request's TTFT is its latency.
"""

from __future__ import annotations

from typing import Any

SLO_KEYS = ("ttft_ms", "tpot_ms", "latency_ms")


class SloTracker:
    """Counts the requests meeting each SLO and all of them."""

    __slots__ = ("limits", "met", "met_by")

    def __init__(self, slo: dict[str, float] | None) -> None:
        self.limits: tuple[float | None, ...] = tuple(
            float(slo[k]) if slo and slo.get(k) is not None else None for k in SLO_KEYS)
        self.met = 0
        self.met_by = [0, 0, 0]

    @property
    def active(self) -> bool:
        return any(limit is not None for limit in self.limits)

    def add(self, ttft: float | None, tpot: float | None, latency: float | None) -> None:
        """One successful request's figures (ms); failed requests are not added (they never meet SLOs)."""
        lt, lp, ll = self.limits
        ok_t = lt is None or (ttft is not None and ttft <= lt)
        ok_p = lp is None or tpot is None or tpot <= lp
        ok_l = ll is None or (latency is not None and latency <= ll)
        by = self.met_by
        by[0] += ok_t
        by[1] += ok_p
        by[2] += ok_l
        if ok_t and ok_p and ok_l:
            self.met += 1

    def merge(self, other: SloTracker) -> None:
        self.met += other.met
        self.met_by = [a + b for a, b in zip(self.met_by, other.met_by, strict=True)]

    def metrics(self, requests: int, duration_s: float | None) -> dict[str, Any]:
        """goodput, slo_attainment (and per SLO), requests_meeting_slo; null without SLOs or requests."""
        if not self.active:
            return {"slo": None, "goodput": None, "slo_attainment": None, "slo_attainment_by_metric": None,
                    "requests_meeting_slo": None}
        return {
            "slo": {k: v for k, v in zip(SLO_KEYS, self.limits, strict=True) if v is not None},
            "goodput": self.met / duration_s if duration_s else None,
            "slo_attainment": self.met / requests if requests else None,
            "slo_attainment_by_metric": {
                k: (n / requests if requests else None)
                for k, v, n in zip(SLO_KEYS, self.limits, self.met_by, strict=True) if v is not None},
            "requests_meeting_slo": self.met,
        }
