"""Was the run limited by the client rather than the server? The client-bound verdict.

Three signals, each with a threshold (a run is flagged client-bound when any one trips):

- **CPU**: a client process was busy on the CPU for >= CPU_BUSY_SHARE (90 %) of the run (process CPU
  time / wall time from the run's start to its last completions, sampled every 16th completion; windows
  under MIN_WINDOW_S are not judged).
  A saturated event loop delays reading every response, so every timing then includes client time.
- **Event-loop lag** (open and closed loop): a 50 ms timer woke up late by more than LOOP_LAG_P90_MS
  at the 90th percentile, judged once there are MIN_LOOP_SAMPLES samples. Late timers mean late reads and
  late sends. (p90, not p99: a single stall on a shared machine should not flag a run.) With the CPU
  share low, the lag comes from other processes taking the CPU, and the reason says so.
- **Send lag** (open loop only, there is no schedule in a closed loop): requests left more than
  SEND_LAG_P99_MS (p99) after their scheduled time while the `parallel` cap was not what held them back
  (mean requests in flight < CAP_SHARE of `parallel`). When the cap was full, the late sends are the
  server's doing (it is slower than the arrival rate) and `send_lag_cause` says "parallel_cap" instead.

The remedy, given with the verdict, is more client processes (`workers`).
"""

from __future__ import annotations

import os
from time import perf_counter, process_time
from typing import Any

from ._stats import Dist

CPU_BUSY_SHARE = 0.90
MIN_WINDOW_S = 0.5
LOOP_LAG_P90_MS = 50.0
MIN_LOOP_SAMPLES = 10
SEND_LAG_P99_MS = 25.0
CAP_SHARE = 0.8
_CPU_SAMPLE_EVERY = 16  # process_time() costs ~1 µs: sample every 16th completion


class ClientLoad:
    """Per client process: CPU busy share over the measured window, and time requests spent in flight.

    The window opens at `start()` (the run's t0) and closes at the last sampled completion.
    """

    __slots__ = ("n", "cpu0", "wall0", "cpu1", "wall1", "in_flight_s", "busy_share")

    def __init__(self) -> None:
        self.n = 0
        self.cpu0 = self.wall0 = self.cpu1 = self.wall1 = 0.0
        self.in_flight_s = 0.0
        self.busy_share: float | None = None  # set on merge (max over processes)

    def start(self) -> None:
        self.cpu0, self.wall0 = process_time(), perf_counter()
        self.cpu1, self.wall1 = self.cpu0, self.wall0

    def add(self, sent: float, end: float | None) -> None:
        if end is not None:
            self.in_flight_s += end - sent
        self.n += 1
        if self.n % _CPU_SAMPLE_EVERY == 0 and self.wall0:
            self.cpu1, self.wall1 = process_time(), perf_counter()

    def share(self) -> float | None:
        """This process's CPU busy share, or the max over merged processes; None for a too-short window."""
        own = None
        if self.wall0 and self.wall1 - self.wall0 >= MIN_WINDOW_S:
            own = (self.cpu1 - self.cpu0) / (self.wall1 - self.wall0)
        shares = [s for s in (own, self.busy_share) if s is not None]
        return max(shares) if shares else None

    def merge(self, other: ClientLoad) -> None:
        self.in_flight_s += other.in_flight_s
        theirs = other.share()
        if theirs is not None:
            self.busy_share = theirs if self.busy_share is None else max(self.busy_share, theirs)


def client_verdict(metrics: dict[str, Any], load: ClientLoad, loop_lag: Dist, parallel: int,
                   rate: float, workers: int) -> dict[str, Any]:
    """The client-bound fields of a run's metrics.

    Args:
        metrics: the run's flat metrics (needs send_lag_ms_p99, loop_lag_ms_p99, duration_s).
        load: the merged ClientLoad of the run.
        loop_lag: the run's loop-lag distribution (ms).
        parallel: the run's in-flight cap; rate: its arrival rate (<= 0: closed loop); workers: client processes.

    Returns:
        {"client_bound", "client_bound_reasons", "client_cpu_share", "mean_in_flight", "send_lag_cause"}.
    """
    reasons: list[str] = []
    share = load.share()
    if share is not None and share >= CPU_BUSY_SHARE:
        reasons.append(f"a client process was busy {share:.0%} of the time (>= {CPU_BUSY_SHARE:.0%} of a core)")
    lag = loop_lag.percentile(90)
    if lag is not None and loop_lag.count >= MIN_LOOP_SAMPLES and lag > LOOP_LAG_P90_MS:
        why = ""
        if share is not None and share < 0.5:
            why = f" while the client used only {share:.0%} of a core: other processes are taking this machine's CPU"
        reasons.append(f"event-loop lag p90 {lag:.0f} ms > {LOOP_LAG_P90_MS:.0f} ms{why}")
    duration = metrics.get("duration_s")
    in_flight = load.in_flight_s / duration if duration else None
    cause = None
    send_lag = metrics.get("send_lag_ms_p99")
    if rate > 0 and send_lag is not None and send_lag > SEND_LAG_P99_MS:
        if in_flight is not None and in_flight >= CAP_SHARE * parallel:
            cause = "parallel_cap"
        else:
            cause = "client"
            shown = f"{in_flight:.1f}" if in_flight is not None else "?"
            reasons.append(f"send lag p99 {send_lag:.0f} ms > {SEND_LAG_P99_MS:.0f} ms with the in-flight cap "
                           f"not reached (mean {shown} of parallel={parallel})")
    if reasons:
        reasons.append(f"raise workers (--workers, now {workers}; this machine has {os.cpu_count() or 1} cores) "
                       "or use a bigger client machine")
    return {"client_bound": bool(reasons), "client_bound_reasons": reasons, "client_cpu_share": share,
            "loop_lag_ms_p90": lag, "mean_in_flight": in_flight, "send_lag_cause": cause}
