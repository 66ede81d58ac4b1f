"""Compare two runs (perf or eval) metric by metric, say which changes are beyond noise, and gate on them.

    run = load_run("outputs/perf_...")           # a run directory or its summary.json
    cmp = compare(load_run(base), load_run(new))  # one Row per (sweep point or dataset, metric)
    failures = cmp.gate(parse_rules("ttft_ms.p99>+10%,request_throughput<-5%"))
    cmp.write_html("compare.html", failures)     # both runs on the same charts, the table with its verdicts
    cmp.to_frame(), run.to_frame()                # pandas DataFrames (pandas is optional)

Noise, per kind of metric:
    perf distributions (ttft_ms, tpot_ms, latency_ms; mean and p50/p90/p95/p99): a seeded bootstrap 95%
        interval (percentile method, `RESAMPLES` resamples) on the difference new - base of the statistic,
        from the two runs' per-request records; beyond noise when the interval excludes 0. A tail percentile
        gets a verdict only with enough requests above it (MIN_TAIL); each row's interval is 95 % on its own
        (with many rows, expect about one in twenty to read "beyond" by chance: gate on the rows you name).
    throughputs (request/output/total throughput): one number per run, no distribution: the change is
        reported without a noise verdict (`noise` is None).
    eval scores: the score is taken as the proportion of scored samples answered right; Newcombe's hybrid
        score interval (method 10, from two Wilson intervals) on the difference of the two proportions.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson

from .._stats import wilson
from ..errors import ConfigError
from ._frames import pandas, scalars
from ._data import PerfRun, Point, load_perf_run, read_json, record_metric

DIST_METRICS = ("ttft_ms", "tpot_ms", "latency_ms")
"""Per-request metrics compared with a bootstrap interval."""
DIST_STATS = ("mean", "p50", "p90", "p95", "p99")
"""The statistics of each distribution compared (a rule names one: `ttft_ms.p99`)."""
THROUGHPUTS = ("request_throughput", "output_throughput", "total_throughput")
"""Per-run rates: no per-request distribution, so no noise verdict."""
RESAMPLES = 1000
"""Bootstrap resamples per metric (all statistics of a metric share them)."""
MIN_TAIL = 10
"""A percentile pN gets a noise verdict only when each run has at least this many requests above it
(n * (1 - N/100) >= MIN_TAIL: p99 needs 1,000 requests, p90 100): the bootstrap of a tail percentile from a
handful of tail values is far too narrow and would call noise a change."""
SEED = 20240601

Kind = Literal["perf", "eval"]


@dataclass
class Run:
    """A run read back: its kind and, per sweep point (perf) or dataset (eval), what is compared."""

    path: str
    kind: Kind
    summary: dict[str, Any]
    perf_points: dict[str, tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]] | None]] = \
        field(default_factory=dict)
    """key -> (metrics, percentiles, records or None)."""
    perf: PerfRun | None = field(default=None, repr=False)
    """A perf run as the reports read it (the charts of a comparison page); None for an eval run."""

    def to_frame(self) -> Any:
        """A pandas DataFrame, one row per sweep point (perf: its metrics, then `<metric>_<stat>` of every
        percentile) or per dataset (eval: score, metric, requested / scored / errored, status ...).

        Raises:
            ImportError: pandas is not installed (the message says `pip install pandas`).
        """
        pd = pandas("Run.to_frame()")
        if self.kind == "perf":
            rows = {}
            for key, (metrics, percentiles, _) in self.perf_points.items():
                row = scalars(metrics)
                for metric, stats in percentiles.items():
                    for stat, value in (stats or {}).items():
                        row.setdefault(f"{metric}_{stat}", value)
                rows[key] = row
            frame = pd.DataFrame.from_dict(rows, orient="index")
            frame.index.name = "point"
            return frame
        frame = pd.DataFrame.from_dict({str(k): scalars(v or {}) for k, v in self.summary["result"].items()},
                                       orient="index")
        frame.index.name = "dataset"
        return frame

    def records_frame(self) -> Any:
        """perf: a pandas DataFrame of the per-request records, one row per request (`point`, its times in
        ms from the point's start, `ok`, `error`, `output_tokens`, and ttft_ms / tpot_ms / latency_ms as the
        summary defines them, null for a failed request); empty without records or for an eval run.

        Raises:
            ImportError: pandas is not installed.
        """
        pd = pandas("Run.records_frame()")
        rows = []
        for key, (_, _, records) in self.perf_points.items():
            for r in records or []:
                row = {"point": key, **r}
                for metric in DIST_METRICS:  # the summary's distributions hold successful requests only
                    row[metric] = record_metric(r, metric) if r.get("ok") else None
                rows.append(row)
        return pd.DataFrame(rows)


@dataclass
class Row:
    """One metric of one sweep point / dataset in both runs."""

    point: str
    metric: str
    """As a rule names it: `ttft_ms.p99`, `request_throughput`, `gsm8k.score`."""
    base: float | None
    new: float | None
    change: float | None
    rel_change: float | None
    """change / base (0.1 = +10 %); None when base is 0 or missing."""
    ci_low: float | None = None
    ci_high: float | None = None
    """95 % interval on the change (None without a noise verdict)."""
    noise: Literal["beyond", "within"] | None = None
    """Whether the change is beyond noise; None when this metric has no noise verdict (see `method`)."""
    method: str = ""

    @property
    def verdict(self) -> str:
        """"beyond noise", "within noise" or "no verdict", as tables show it."""
        return {"beyond": "beyond noise", "within": "within noise"}.get(self.noise or "", "no verdict")


@dataclass
class Rule:
    """One gate rule: `metric` `op` `threshold` (`relative`: a fraction of the base value)."""

    text: str
    metric: str
    op: Literal[">", "<"]
    threshold: float
    relative: bool

    def fails(self, row: Row) -> bool:
        """True when the row's change passes the threshold in the rule's direction and beyond noise."""
        value = row.rel_change if self.relative else row.change
        if value is None or row.noise == "within":
            return False
        return value > self.threshold if self.op == ">" else value < self.threshold


@dataclass
class Comparison:
    """Every Row of two runs of one kind, and the sweep points / datasets only one of them has."""

    kind: Kind
    base: str
    new: str
    rows: list[Row]
    only_base: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)
    base_run: Run | None = field(default=None, repr=False, compare=False)
    new_run: Run | None = field(default=None, repr=False, compare=False)
    """The runs compared, as read (what `write_html` draws)."""

    @property
    def beyond_noise(self) -> list[Row]:
        return [r for r in self.rows if r.noise == "beyond"]

    def gate(self, rules: list[Rule]) -> list[tuple[Rule, Row]]:
        """The (rule, row) pairs that fail. Rules of the other kind of run are skipped.

        Raises:
            ConfigError: a rule of this kind names a metric no row has (e.g. a dataset not in the runs).
        """
        failures: list[tuple[Rule, Row]] = []
        for rule in rules:
            if rule_kind(rule) != self.kind:
                continue
            rows = [r for r in self.rows if r.metric == rule.metric]
            if not rows:
                raise ConfigError("--fail-on", f"rule {rule.text!r}: no metric {rule.metric!r} in these runs")
            failures.extend((rule, r) for r in rows if rule.fails(r))
        return failures

    def to_html(self, failures: list[tuple[Rule, Row]] | None = None) -> str:
        """The comparison page (see `write_html`) as HTML text."""
        from ._compare_page import render_compare_report

        return render_compare_report(self, failures or [])

    def write_html(self, path: str | Path, failures: list[tuple[Rule, Row]] | None = None) -> Path:
        """Write the comparison page to `path` (both runs on the same charts, the table with its verdicts and
        the rows in `failures` marked as regressions); returns the path. Self-contained: opens offline."""
        from ._compare_page import build_compare_report

        return build_compare_report(self, path, failures or [])

    def to_frame(self) -> Any:
        """A pandas DataFrame of the rows (point, metric, base, new, change, rel_change, ci_low, ci_high, noise,
        method, verdict).

        Raises:
            ImportError: pandas is not installed (the message says `pip install pandas`).
        """
        pd = pandas("Comparison.to_frame()")
        columns = [f.name for f in fields(Row)] + ["verdict"]
        return pd.DataFrame([{**asdict(r), "verdict": r.verdict} for r in self.rows], columns=columns)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "base": self.base, "new": self.new,
                "rows": [asdict(r) for r in self.rows], "only_base": self.only_base, "only_new": self.only_new}


# --- reading runs ---------------------------------------------------------------------------------------

def load_run(path: str | Path) -> Run:
    """Read a perf or eval run from its directory or its summary.json.

    Raises:
        ConfigError: `path` is neither (named in the message).
    """
    p = Path(path)
    summary_path = p / "summary.json" if p.is_dir() else p
    summary = read_json(summary_path)
    if summary is None:
        raise ConfigError("run", f"{str(p)!r} is not a run directory or summary.json (no readable summary.json)")
    if isinstance(summary.get("results"), dict):
        run_dir = summary_path.parent
        if (run_dir / "config.json").is_file():
            perf = load_perf_run(run_dir)
        else:  # a summary.json on its own: figures without per-request records
            perf = PerfRun(path=run_dir, config={}, summary=summary,
                           points=[Point(key=str(key), metrics=res.get("metrics") or {},
                                         percentiles=res.get("percentiles") or {})
                                   for key, res in summary["results"].items() if isinstance(res, dict)])
        run = Run(path=str(p), kind="perf", summary=summary, perf=perf)
        for point in perf.points:
            run.perf_points[point.key] = (point.metrics, point.percentiles, point.records)
        return run
    if isinstance(summary.get("result"), dict):
        return Run(path=str(p), kind="eval", summary=summary)
    raise ConfigError("run", f"{str(p)!r} holds neither perf results nor eval results")


# --- statistics -----------------------------------------------------------------------------------------

def _stat_q(stat: str) -> float | None:
    return None if stat == "mean" else float(stat[1:])


def _stats(values: np.ndarray[Any, Any]) -> dict[str, float]:
    qs = [q for s in DIST_STATS if (q := _stat_q(s)) is not None]
    pct = np.percentile(values, qs)
    out = {"mean": float(values.mean())}
    out.update({s: float(v) for s, v in zip([s for s in DIST_STATS if s != "mean"], pct, strict=True)})
    return out


def _boot(values: np.ndarray[Any, Any], rng: np.random.Generator, resamples: int) -> np.ndarray[Any, Any]:
    """(resamples, len(DIST_STATS)) bootstrap statistics of `values`.

    The mean is computed from resamples drawn in chunks (bounded memory). A percentile needs no resample:
    numpy's (linear) percentile of a resample interpolates between its order statistics k and k+1, and the
    k-th order statistic of n draws from the sorted values is sorted[floor(n * U_k)] with U_k ~ Beta(k, n-k+1)
    (the k-th of n uniforms), U_k+1 = U_k + (1 - U_k) * Beta(1, n-k): the same distribution, drawn exactly,
    in O(resamples) instead of O(resamples * n).
    """
    n = len(values)
    xs = np.sort(values)
    out = np.empty((resamples, len(DIST_STATS)))
    chunk = max(1, min(resamples, 1_000_000 // max(n, 1)))
    for start in range(0, resamples, chunk):
        b = min(chunk, resamples - start)
        out[start:start + b, 0] = xs[rng.integers(0, n, size=(b, n))].mean(axis=1)
    for col, stat in enumerate(DIST_STATS):
        q = _stat_q(stat)
        if q is None:
            continue
        h = (n - 1) * q / 100
        lo = math.floor(h)
        frac = h - lo
        k = lo + 1  # 1-based rank of the lower order statistic
        u_k = rng.beta(k, n - k + 1, size=resamples)
        u_k1 = u_k + (1 - u_k) * rng.beta(1, n - k, size=resamples) if k < n else u_k
        v_k = xs[np.minimum((n * u_k).astype(np.int64), n - 1)]
        v_k1 = xs[np.minimum((n * u_k1).astype(np.int64), n - 1)]
        out[:, col] = v_k + frac * (v_k1 - v_k)
    return out


def bootstrap_diff(base: list[float], new: list[float], resamples: int = RESAMPLES,
                   seed: int = SEED) -> dict[str, tuple[float, float, float]]:
    """Per statistic of DIST_STATS: (new - base, 95 % low, 95 % high), a seeded percentile bootstrap."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(base, dtype=float), np.asarray(new, dtype=float)
    sa, sb = _stats(a), _stats(b)
    diff = _boot(b, rng, resamples) - _boot(a, rng, resamples)
    low, high = np.percentile(diff, [2.5, 97.5], axis=0)
    return {s: (sb[s] - sa[s], float(low[i]), float(high[i])) for i, s in enumerate(DIST_STATS)}


def newcombe_diff(p1: float, n1: int, p2: float, n2: int) -> tuple[float, float]:
    """95 % interval on p2 - p1 (Newcombe's hybrid score method, from the Wilson interval of each)."""
    l1, u1 = wilson(p1 * n1, n1)
    l2, u2 = wilson(p2 * n2, n2)
    d = p2 - p1
    return d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2), d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)


# --- comparing ------------------------------------------------------------------------------------------

def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _row(point: str, metric: str, base: float | None, new: float | None, **kw: Any) -> Row:
    change = None if base is None or new is None else new - base
    rel = None if change is None or not base else change / abs(base)
    return Row(point=point, metric=metric, base=base, new=new, change=change, rel_change=rel, **kw)


def _perf_rows(key: str, a: tuple[Any, Any, Any], b: tuple[Any, Any, Any], resamples: int) -> list[Row]:
    (ma, pa, ra), (mb, pb, rb) = a, b
    rows: list[Row] = []
    for metric in DIST_METRICS:
        va = [v for r in ra or [] if r.get("ok") and (v := record_metric(r, metric)) is not None]
        vb = [v for r in rb or [] if r.get("ok") and (v := record_metric(r, metric)) is not None]
        if len(va) >= 2 and len(vb) >= 2:
            boot = bootstrap_diff(va, vb, resamples)
            sa, sb = _stats(np.asarray(va)), _stats(np.asarray(vb))
            for s in DIST_STATS:
                _, low, high = boot[s]
                q = _stat_q(s)
                need = 0 if q is None else math.ceil(MIN_TAIL / (1 - q / 100) - 1e-9)
                if min(len(va), len(vb)) < need:
                    rows.append(_row(key, f"{metric}.{s}", sa[s], sb[s],
                                     method=f"too few requests for a {s} verdict ({need} needed): no noise verdict"))
                    continue
                rows.append(_row(key, f"{metric}.{s}", sa[s], sb[s], ci_low=low, ci_high=high,
                                 noise="beyond" if low > 0 or high < 0 else "within",
                                 method=f"bootstrap 95% ({resamples} resamples, {len(va)}/{len(vb)} requests)"))
            continue
        for s in DIST_STATS:  # no records: the summaries' figures, without a verdict
            base = _num((pa.get(metric) or {}).get(s))
            new = _num((pb.get(metric) or {}).get(s))
            if base is not None or new is not None:
                rows.append(_row(key, f"{metric}.{s}", base, new, method="no per-request records: no noise verdict"))
    for metric in THROUGHPUTS:
        base, new = _num(ma.get(metric)), _num(mb.get(metric))
        if base is not None or new is not None:
            rows.append(_row(key, metric, base, new, method="one value per run: no noise verdict"))
    return rows


def _eval_rows(name: str, a: dict[str, Any], b: dict[str, Any]) -> list[Row]:
    p1, p2 = _num(a.get("score")), _num(b.get("score"))
    n1, n2 = a.get("scored") or 0, b.get("scored") or 0
    if p1 is not None and p2 is not None and 0 <= p1 <= 1 and 0 <= p2 <= 1 and n1 > 0 and n2 > 0:
        low, high = newcombe_diff(p1, int(n1), p2, int(n2))
        return [_row(name, f"{name}.score", p1, p2, ci_low=low, ci_high=high,
                     noise="beyond" if low > 0 or high < 0 else "within",
                     method=f"Newcombe 95% on two proportions ({n1}/{n2} scored)")]
    return [_row(name, f"{name}.score", p1, p2, method="not a proportion of scored samples: no noise verdict")]


def compare(base: Run | str | Path, new: Run | str | Path, resamples: int = RESAMPLES) -> Comparison:
    """Compare two runs of the same kind; sweep points are matched by key, datasets by name.

    Raises:
        ConfigError: a path is not a run, or the two runs are of different kinds.
    """
    a = base if isinstance(base, Run) else load_run(base)
    b = new if isinstance(new, Run) else load_run(new)
    if a.kind != b.kind:
        raise ConfigError("run", f"cannot compare a {a.kind} run ({a.path!r}) with a {b.kind} run ({b.path!r})")
    if a.kind == "perf":
        keys_a, keys_b = list(a.perf_points), list(b.perf_points)
    else:
        keys_a, keys_b = list(a.summary["result"]), list(b.summary["result"])
    rows: list[Row] = []
    for key in keys_a:
        if key not in keys_b:
            continue
        if a.kind == "perf":
            rows.extend(_perf_rows(key, a.perf_points[key], b.perf_points[key], resamples))
        else:
            rows.extend(_eval_rows(key, a.summary["result"][key] or {}, b.summary["result"][key] or {}))
    return Comparison(kind=a.kind, base=a.path, new=b.path, rows=rows,
                      only_base=[k for k in keys_a if k not in keys_b], only_new=[k for k in keys_b if k not in keys_a],
                      base_run=a, new_run=b)


COMPARE_PAGE = "compare.html"
"""The comparison page's name when no path is given: in NEW's run directory."""


def default_html_path(new: str | Path) -> Path:
    """Where `evalsvc compare` writes the page by default: compare.html in NEW's run directory."""
    p = Path(new)
    return (p if p.is_dir() else p.parent) / COMPARE_PAGE


# --- the gate grammar -----------------------------------------------------------------------------------

_RULE = re.compile(r"^\s*(?P<metric>[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)?)\s*(?P<op>[<>])\s*"
                   r"(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?P<pct>%)?\s*$")


def rule_kind(rule: Rule) -> Kind:
    return "eval" if rule.metric.endswith(".score") else "perf"


def parse_rules(text: str) -> list[Rule]:
    """Parse `--fail-on`: comma-separated `METRIC>THRESHOLD` / `METRIC<THRESHOLD` rules.

    METRIC: `ttft_ms.p99` (a distribution of DIST_METRICS and a statistic of DIST_STATS), a throughput of
    THROUGHPUTS, or `<dataset>.score`. THRESHOLD: a signed number, relative with `%` (of the base value),
    else absolute (ms, req/s, or score points: -0.02 is two points).

    Raises:
        ConfigError: a rule that does not parse or names an unknown metric (the rule is quoted).
    """
    rules: list[Rule] = []
    for part in text.split(","):
        if not part.strip():
            continue
        m = _RULE.match(part)
        if m is None:
            raise ConfigError("--fail-on", f"rule {part.strip()!r} is not METRIC>THRESHOLD or METRIC<THRESHOLD "
                                           "(e.g. 'ttft_ms.p99>+10%', 'gsm8k.score<-0.02')")
        metric = m["metric"]
        name, _, stat = metric.partition(".")
        if stat != "score" and not (name in THROUGHPUTS and not stat) \
                and not (name in DIST_METRICS and stat in DIST_STATS):
            known = ", ".join([f"{d}.{{{'|'.join(DIST_STATS)}}}" for d in DIST_METRICS] + list(THROUGHPUTS))
            raise ConfigError("--fail-on", f"rule {part.strip()!r}: unknown metric {metric!r} "
                                           f"(one of {known}, or <dataset>.score)")
        relative = m["pct"] is not None
        threshold = float(m["num"]) / (100 if relative else 1)
        rules.append(Rule(text=part.strip(), metric=metric, op=m["op"],  # type: ignore[arg-type]
                          threshold=threshold, relative=relative))
    if not rules:
        raise ConfigError("--fail-on", "no rule given")
    return rules


def dumps(obj: Any) -> str:
    """JSON text of a comparison's dict (NaN-free: values are finite or null)."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode()
