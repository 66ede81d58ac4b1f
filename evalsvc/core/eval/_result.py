"""Evaluation results: one DatasetResult per benchmark, read from evalscope's files on disk.

evalscope leaves samples that failed (endpoint errors) out of the score's denominator and only says
so in `execution_summary`. Here they are first-class: `errored` counts them and `incomplete` is set,
so a run where samples failed never reads as a clean score: its status is "incomplete", and a
dataset that scored nothing at all has failed.
"""

from __future__ import annotations

import html
import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._result import ResultBase
from .._stats import macro_stats, mean_stats
from ..status import RunStatus

RUN_STATUSES = (RunStatus.COMPLETED, RunStatus.INCOMPLETE, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMEOUT)
"""Every status an EvalResult can have (see EvalResult.status)."""

_EXAMPLE_LIMIT = 160


@dataclass
class DatasetResult:
    """The outcome of one benchmark."""

    name: str
    status: str = RunStatus.COMPLETED
    """A RunStatus: completed | failed | cancelled | timeout."""
    error: str | None = None
    score: float | None = None
    """The benchmark's primary metric over the scored samples (None when nothing was scored): the micro
    mean, every sample weighing the same."""
    macro_score: float | None = None
    """evalscope's macro score of the primary metric: the mean of its subsets' scores, each weighing the same."""
    metric: str | None = None
    requested: int | None = None
    """Samples the evaluation covered (limit applied per subset)."""
    scored: int = 0
    errored: int = 0
    """Samples that failed (endpoint errors after retries) and are not in the score."""
    predicted: int = 0
    """Model answers on disk: what a resumed run (use_cache) will not ask for again."""
    subsets: dict[str, dict[str, Any]] = field(default_factory=dict)
    categories: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, float | None] = field(default_factory=dict)
    """Every metric evalscope computed, by name."""
    sample_errors: list[str] = field(default_factory=list)
    """The first distinct reasons samples failed."""
    errored_samples: list[dict[str, Any]] = field(default_factory=list)
    """Each sample that failed: {"subset", "id" (its `index` in the subset, as in the predictions), "error"},
    sorted; at most 1000 are listed."""
    usage: dict[str, Any] = field(default_factory=dict)
    """Token counts and latency of the evaluation requests, from evalscope's perf summary."""
    stderr: float | None = None
    """Standard error of the score over its samples (see core/_stats.py)."""
    ci95: list[float] | None = None
    """95 % interval of the score: [low, high] (Wilson for 0/1 scores, seeded bootstrap otherwise)."""
    n: int = 0
    """The per-sample values stderr and ci95 rest on (questions; with repeats, each question's mean)."""
    ci_method: str | None = None
    """"wilson" or "bootstrap"."""
    repeats: dict[str, Any] | None = None
    """With repeats > 1: k, the score of each repeat, their spread, and how often a question's answers agree."""
    timing: dict[str, Any] = field(default_factory=dict)
    """The evaluation's own requests: latency and TTFT (ms), tokens, throughput at the run's load."""
    sample_values: list[float] = field(default_factory=list, repr=False)
    """The per-sample values behind stderr / ci95 (not in to_dict): the run's micro mean pools them."""
    duration_s: float | None = None
    output_dir: str | None = None
    predictions: list[str] = field(default_factory=list)
    reviews: list[str] = field(default_factory=list)
    report_path: str | None = None
    log_path: str | None = None

    @property
    def incomplete(self) -> bool:
        """True unless every requested sample was scored in a run that completed."""
        return (self.status != RunStatus.COMPLETED or self.errored > 0 or self.requested is None
                or self.scored < self.requested)

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "macro_score": self.macro_score,
            "metric": self.metric,
            "requested": self.requested,
            "scored": self.scored,
            "errored": self.errored,
            "predicted": self.predicted,
            "incomplete": self.incomplete,
            "status": str(self.status),
            "error": self.error,
            "subsets": self.subsets,
            "categories": self.categories,
            "metrics": self.metrics,
            "sample_errors": self.sample_errors,
            "errored_samples": self.errored_samples,
            "usage": self.usage,
            "stderr": self.stderr,
            "ci95": self.ci95,
            "n": self.n,
            "ci_method": self.ci_method,
            "repeats": self.repeats,
            "timing": self.timing,
            "duration_s": self.duration_s,
            "output_dir": self.output_dir,
            "predictions": self.predictions,
            "reviews": self.reviews,
            "report_path": self.report_path,
            "log_path": self.log_path,
        }

    def __repr__(self) -> str:
        parts = [f"{self.name}: {_fmt_score(self.score)} {self.metric or ''}".rstrip(),
                 f"scored {self.scored}/{_fmt_int(self.requested)}"]
        if self.status != RunStatus.COMPLETED and self.predicted:
            parts.append(f"predicted {self.predicted}")
        if self.errored:
            parts.append(f"errored {self.errored}")
        if self.status != RunStatus.COMPLETED:
            parts.append(self.status + (f" ({self.error})" if self.error else ""))
        elif self.incomplete:
            parts.append(RunStatus.INCOMPLETE)
        return f"<DatasetResult {', '.join(parts)}>"


@dataclass
class EvalResult(ResultBase[DatasetResult]):
    """The outcome of an evaluation: status, output directory and one DatasetResult per benchmark.

    `result["gsm8k"]` is a dataset's DatasetResult (as `result.datasets["gsm8k"]`); iterating gives the
    dataset names; `to_dict()` is the JSON shape of summary.json.
    """

    status: str
    """completed: every dataset finished and every sample was scored (the only clean outcome);
    incomplete: every dataset finished, but samples errored and the scores exclude them;
    failed: a dataset failed or scored nothing; cancelled; timeout (a RunStatus, see RUN_STATUSES).
    `error` says which datasets fell short and how many samples errored."""
    output_dir: str | None
    datasets: dict[str, DatasetResult] = field(default_factory=dict)
    error: str | None = None
    model: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    """Notes about the run's outputs, e.g. `report_error` when report.html could not be built."""

    def _parts(self) -> dict[str, DatasetResult]:
        return self.datasets

    @property
    def incomplete(self) -> bool:
        return self.status != RunStatus.COMPLETED or any(d.incomplete for d in self.datasets.values())

    @property
    def headline(self) -> str:
        """"model — status", with the error when it says more than the status."""
        text = f"{self.model or ''} — {self.status}"
        return text + (f": {self.error}" if self.error and self.error != self.status else "")

    @property
    def scores(self) -> dict[str, float | None]:
        """Primary score per benchmark."""
        return {name: d.score for name, d in self.datasets.items()}

    @property
    def aggregate(self) -> dict[str, Any]:
        """Across the datasets with a score: "macro" (each dataset weighs the same) and "micro" (each sample
        does) means, each with stderr and ci95 (see core/_stats.py)."""
        scored = [d for d in self.datasets.values() if d.score is not None and d.sample_values]
        macro = macro_stats([(mean_stats(d.sample_values)["score"], d.stderr, d.ci95) for d in scored])
        micro = mean_stats([v for d in scored for v in d.sample_values])
        if micro["score"] is not None:
            micro["score"] = round(micro["score"], 6)
        return {"macro": macro, "micro": micro}

    def to_dict(self) -> dict[str, Any]:
        """The SPEC §3 shape: {"output_dir", "result": {name: {...}}, "status", ...}."""
        return {
            "output_dir": self.output_dir,
            "status": str(self.status),
            "error": self.error,
            "incomplete": self.incomplete,
            "model": self.model,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
            "result": {name: d.to_dict() for name, d in self.datasets.items()},
            "info": self.info,
            "aggregate": self.aggregate,
        }

    def __repr__(self) -> str:
        lines = [f"EvalResult(status={str(self.status)!r}, model={self.model!r}, output_dir={self.output_dir!r}"
                 + (f", error={self.error!r}" if self.error else "") + ")"]
        lines += [f"  {d!r}" for d in self.datasets.values()]
        return "\n".join(lines)

    def __rich__(self) -> Any:
        return results_table(self)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in _COLUMNS)
        rows = []
        for d in self.datasets.values():
            cells = _row(d)
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        caption = html.escape(self.headline)
        foot = html.escape(f"output: {self.output_dir}") if self.output_dir else ""
        return (f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table><small>{foot}</small>")

    def to_markdown(self) -> str:
        """A human report: the result table, subsets, and where the files are."""
        out = [f"# Evaluation of {self.model}", "",
               f"Status: **{self.status}**" + (f" — {self.error}" if self.error and self.error != self.status else ""),
               ""]
        out += ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
        out += ["| " + " | ".join(_row(d)) + " |" for d in self.datasets.values()]
        agg = self.aggregate
        if agg["macro"]["datasets"] > 1:
            out += ["", f"Across datasets: macro mean {_fmt_score(agg['macro']['score'])} "
                    f"{_fmt_ci(agg['macro']['ci95'])}, micro mean {_fmt_score(agg['micro']['score'])} "
                    f"{_fmt_ci(agg['micro']['ci95'])} over {agg['micro']['n']} questions."]
        for d in self.datasets.values():
            if len(d.subsets) > 1:
                out += ["", f"## {d.name} by subset", "", "| subset | score | 95% CI | scored | errored |",
                        "|---|---|---|---|---|"]
                out += [f"| {s} | {_fmt_score(v.get('score'))} | {_fmt_ci(v.get('ci95'))} | {v.get('scored', '')} | "
                        f"{v.get('errored', 0)} |" for s, v in d.subsets.items()]
            if d.repeats:
                out += ["", f"{d.name}, {d.repeats['k']} repeats: scores {d.repeats['scores']} (stdev "
                        f"{d.repeats['stdev']}), pass@k {d.repeats.get('pass_at') or {}}, answers agree on "
                        f"{d.repeats['agreement']} of questions."]
            if d.sample_errors:
                out += ["", f"Errors in {d.name}:", ""] + [f"- {e}" for e in d.sample_errors]
        out += ["", f"Files: `{self.output_dir}` (one folder per benchmark with evalscope's predictions, "
                "reviews and reports).", ""]
        return "\n".join(out)


_COLUMNS = ("dataset", "metric", "score", "95% CI", "scored", "errored", "status")


def _fmt_score(score: float | None) -> str:
    return "—" if score is None else f"{score:.4f}"


def _fmt_ci(ci: list[float] | None) -> str:
    return "—" if not ci else f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def _fmt_int(value: int | None) -> str:
    return "?" if value is None else str(value)


def _example(d: DatasetResult) -> str:
    if not d.sample_errors:
        return ""
    text = " ".join(d.sample_errors[0].split())
    return f" (e.g. {text if len(text) <= _EXAMPLE_LIMIT else text[: _EXAMPLE_LIMIT - 3] + '...'})"


def describe_shortfall(datasets: Iterable[DatasetResult]) -> str | None:
    """One line naming each finished dataset that failed or left samples out, and how many; None if none did.

    Stopped datasets (cancelled, timeout) are left out: the run's own status says why they stopped.
    """
    parts: list[str] = []
    excluded = False
    for d in datasets:
        if d.status == RunStatus.FAILED:
            parts.append(f"{d.name}: {d.error or 'failed'}")
        elif d.status != RunStatus.COMPLETED or not d.incomplete:
            continue
        elif d.errored:
            excluded = True
            parts.append(f"{d.name}: {d.errored} of {_fmt_int(d.requested)} samples errored{_example(d)}")
        elif d.requested is not None:
            parts.append(f"{d.name}: {d.scored} of {d.requested} samples scored")
        else:
            parts.append(f"{d.name}: the number of samples evaluated is unknown")
    if not parts:
        return None
    return "; ".join(parts) + ("; scores exclude them" if excluded else "")


def _row(d: DatasetResult) -> list[str]:
    status = str(d.status if d.status != RunStatus.COMPLETED or not d.incomplete else RunStatus.INCOMPLETE)
    if d.status != RunStatus.COMPLETED and d.predicted:
        status += f" ({d.predicted} answers kept)"
    return [d.name, d.metric or "", _fmt_score(d.score), _fmt_ci(d.ci95), f"{d.scored}/{_fmt_int(d.requested)}",
            str(d.errored), status]


def results_table(result: EvalResult) -> Any:
    """A rich Table of the results (the CLI prints it; Jupyter and rich consoles render it)."""
    from rich.table import Table

    table = Table(title=result.headline,
                  title_justify="left")
    for col in _COLUMNS:
        table.add_column(col, justify="right" if col in ("score", "95% CI", "scored", "errored") else "left")
    for d in result.datasets.values():
        cells = _row(d)
        style = "red" if d.status == RunStatus.FAILED else "yellow" if d.incomplete else None
        table.add_row(*cells, style=style)
    return table


# --- reading evalscope's output ------------------------------------------------------------------


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as fh:
            return sum(1 for line in fh if line.strip())
    except OSError:
        return 0


def _subset_of(path: Path, name: str) -> str:
    stem = path.stem
    return stem[len(name) + 1:] if stem.startswith(name + "_") else stem


def read_dataset_result(name: str, out_dir: Path, *, status: str, error: str | None,
                        total: int | None, sample_errors: list[str], duration_s: float | None,
                        errored_samples: list[dict[str, Any]] | None = None, repeats: int = 1,
                        inference_s: float | None = None) -> DatasetResult:
    """Build the DatasetResult of one benchmark from its evalscope output directory.

    Args:
        name: the benchmark.
        out_dir: the directory its worker ran in (configs/, predictions/, reviews/, reports/, logs/).
        status: how the worker ended.
        error: why it failed, if it did.
        total: the sample count the worker last reported (used when there is no report).
        sample_errors: reasons samples failed, as relayed from the worker's log.
        duration_s: wall time of the worker.
        repeats: generations per sample the run asked for.
        inference_s: wall time from the first to the last answered sample (for the throughput).
    """
    result = DatasetResult(name=name, status=status, error=error, duration_s=duration_s,
                           sample_errors=sample_errors, output_dir=str(out_dir), requested=total,
                           errored_samples=sorted(errored_samples or [],
                                                  key=lambda e: (str(e.get("subset")), str(e.get("id")).zfill(12))))
    predictions = sorted(out_dir.glob(f"predictions/*/{name}_*.jsonl"))
    reviews = sorted(out_dir.glob(f"reviews/*/{name}_*.jsonl"))
    result.predictions = [str(p) for p in predictions]
    result.reviews = [str(p) for p in reviews]
    result.predicted = sum(_count_lines(p) for p in predictions)
    log = out_dir / "logs" / "eval_log.log"
    result.log_path = str(log) if log.exists() else None
    reports = sorted(out_dir.glob(f"reports/*/{name}.json"))
    report = None
    if reports and status == RunStatus.COMPLETED:
        result.report_path = str(reports[0])
        try:
            report = json.loads(reports[0].read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            result.status, result.error = RunStatus.FAILED, f"unreadable report {reports[0]}: {exc}"
    if report is None:
        # No report (cancelled, failed): nothing was scored; the predictions on disk are kept for a resume.
        result.subsets = {_subset_of(p, name): {"score": None, "scored": 0, "predicted": _count_lines(p)}
                          for p in predictions}
        if status == RunStatus.COMPLETED and result.error is None:
            result.status, result.error = RunStatus.FAILED, "evalscope wrote no report"
        return result
    _fill_from_report(result, report)
    _fill_stats(result, reviews, repeats)
    _fill_timing(result, predictions, inference_s)
    if result.status == RunStatus.COMPLETED and result.scored == 0:
        # A score over no sample is no score: evalscope reports one anyway when every request failed.
        result.status, result.score = RunStatus.FAILED, None
        if result.errored and result.errored == (result.requested or result.errored):
            result.error = f"all {result.errored} samples errored{_example(result)}"
        elif result.requested == 0:
            result.error = "there was no sample to evaluate"
        else:
            result.error = result.error or "no sample was scored"
    return result


def _metric_key(metric: dict[str, Any], names: list[str]) -> str:
    ident = metric.get("identity") or {}
    name = str(ident.get("name") or metric.get("name") or "metric")
    if names.count(name) > 1:
        extra = [str(ident.get("aggregation") or "")] + [f"{k}={v}" for k, v in (ident.get("dimensions") or {}).items()]
        name = "_".join([name] + [e for e in extra if e])
    return name


def _fill_from_report(result: DatasetResult, report: dict[str, Any]) -> None:
    metrics = [m for m in report.get("metrics") or [] if isinstance(m, dict)]
    names = [str((m.get("identity") or {}).get("name") or m.get("name")) for m in metrics]
    result.metrics = {_metric_key(m, names): m.get("score") for m in metrics}
    primary_id = report.get("primary_metric_identity")
    primary = next((m for m in metrics if m.get("identity") == primary_id), metrics[0] if metrics else None)
    summary = report.get("execution_summary") or {}
    exec_subsets = summary.get("subsets") or {}
    if primary is not None:
        result.metric = str((primary.get("identity") or {}).get("name") or primary.get("name"))
        result.score = primary.get("score")
        result.macro_score = primary.get("macro_score")
        for cat in primary.get("categories") or []:
            cat_name = "/".join(str(n) for n in (cat.get("name") or [])) or "default"
            subs = [s for s in cat.get("subsets") or [] if not s.get("is_aggregate")]
            for sub in subs:
                result.subsets[str(sub.get("name"))] = {"score": sub.get("score"), "scored": sub.get("num")}
            if cat_name != "default":
                result.categories[cat_name] = {"score": cat.get("score"), "scored": cat.get("num"),
                                               "subsets": [str(s.get("name")) for s in subs]}
    if report.get("primary_metric_unavailable_reason") and result.error is None:
        result.error = str(report["primary_metric_unavailable_reason"])
    for sub_name, counts in exec_subsets.items():
        entry = result.subsets.setdefault(str(sub_name), {"score": None, "scored": 0})
        entry["requested"] = counts.get("requested")
        entry["errored"] = counts.get("errored", 0)
        entry["scored"] = counts.get("succeeded", entry.get("scored"))
    if summary:
        result.requested = summary.get("requested", result.requested)
        result.scored = int(summary.get("succeeded") or 0)
        result.errored = int(summary.get("errored") or 0)
    else:
        result.scored = int(report.get("num") or 0)
    perf = (report.get("perf_metrics") or {}).get("summary") or {}
    usage = perf.get("usage") or {}
    latency = perf.get("latency") or {}
    if perf:
        result.usage = {
            "requests": perf.get("n_samples"),
            "input_tokens": usage.get("total_input_tokens"),
            "output_tokens": usage.get("total_output_tokens"),
            "latency_s_mean": latency.get("mean"),
            "latency_s_p50": latency.get("50%"),
            "latency_s_p99": latency.get("99%"),
        }


# --- statistics, repeats and timing from the per-sample files ----------------------------------------


def _jsonl(path: Path) -> Iterable[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(row, dict):
                        yield row
    except OSError:
        return


_USABLE = ("success", "fallback", None)
"""Sample score statuses that carry a score (evalscope leaves the others out of every metric)."""


def _sample_value(row: dict[str, Any], metric: str | None) -> tuple[Any, float, Any] | None:
    """(group id, value of the primary metric, extracted prediction) of one review line, or None."""
    sample = row.get("sample_score") or {}
    score = sample.get("score") or {}
    values = score.get("value") or {}
    if score.get("status") not in _USABLE or not isinstance(values, dict):
        return None
    key = metric if metric in values else score.get("main_score_name")
    value = values.get(key) if key else None
    if isinstance(value, bool):
        value = float(value)
    if not isinstance(value, (int, float)) or value != value:
        return None
    group = sample.get("group_id", sample.get("sample_id", row.get("index")))
    return group, float(value), (sample.get("generation_index") or 0, score.get("extracted_prediction"))


_SCORE_ROUNDING = 5e-4
"""evalscope rounds scores to 4 places: a mean of the samples this close to the score is that score."""


def _interval(values: list[float], score: Any) -> dict[str, Any]:
    """stderr, ci95, n and ci_method of a score from its per-question values; the numbers are None when the
    score is not the mean of those values (an aggregation other than the mean), which they would not describe."""
    stats = mean_stats(values)
    out = {k: stats[k] for k in ("stderr", "ci95", "n", "ci_method")}
    if stats["score"] is not None and (not isinstance(score, (int, float))
                                       or abs(stats["score"] - score) > _SCORE_ROUNDING):
        out.update(stderr=None, ci95=None, ci_method=None)
    return out


def _fill_stats(result: DatasetResult, reviews: list[Path], repeats: int) -> None:
    """stderr / ci95 of the score per dataset and subset, and with repeats the spread across them.

    The unit is the question: with repeats, a question's value is the mean over its repeats (its
    repeats are not independent samples), so the interval says how sure the score is over questions.
    """
    by_repeat: dict[int, list[float]] = {}
    answers: list[list[Any]] = []
    values: list[float] = []
    for path in reviews:
        groups: dict[Any, list[float]] = {}
        predictions: dict[Any, list[Any]] = {}
        for row in _jsonl(path):
            found = _sample_value(row, result.metric)
            if found is None:
                continue
            group, value, (index, prediction) = found
            groups.setdefault(group, []).append(value)
            predictions.setdefault(group, []).append(prediction)
            by_repeat.setdefault(int(index), []).append(value)
        subset_values = [sum(v) / len(v) for v in groups.values()]
        answers.extend(predictions.values())
        values.extend(subset_values)
        entry = result.subsets.get(_subset_of(path, result.name))
        if entry is not None:
            entry.update(_interval(subset_values, entry.get("score")))
    stats = _interval(values, result.score)
    result.sample_values = values if stats["ci95"] is not None else []
    result.stderr, result.ci95, result.n, result.ci_method = (stats["stderr"], stats["ci95"], stats["n"],
                                                             stats["ci_method"])
    if repeats > 1:
        scores = [round(sum(v) / len(v), 6) for _, v in sorted(by_repeat.items()) if v]
        result.repeats = {
            "k": repeats,
            "scores": scores,
            "min": min(scores) if scores else None,
            "max": max(scores) if scores else None,
            "stdev": round(statistics.stdev(scores), 6) if len(scores) > 1 else None,
            "pass_at": _at_k(result, "pass_at_k"),
            "agreement": (round(sum(1 for a in answers if len(set(map(str, a))) == 1) / len(answers), 6)
                          if answers else None),
        }
        for aggregation, key in (("vote_at_k", "vote_at"), ("pass_hat_k", "pass_hat")):
            at_k = _at_k(result, aggregation)
            if at_k:
                result.repeats[key] = at_k


def _at_k(result: DatasetResult, aggregation: str) -> dict[str, float | None]:
    """{n: score} of evalscope's pass@n / vote@n / pass^n metrics of the primary metric."""
    prefix = f"{result.metric}_{aggregation}_k="
    return {key[len(prefix):]: value for key, value in result.metrics.items() if key.startswith(prefix)}


def _percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    import numpy as np

    xs = np.asarray(values, dtype=float) * 1000.0
    p50, p90, p99 = np.percentile(xs, [50, 90, 99])
    return {"mean": round(float(xs.mean()), 3), "p50": round(float(p50), 3), "p90": round(float(p90), 3),
            "p99": round(float(p99), 3), "max": round(float(xs.max()), 3)}


def _fill_timing(result: DatasetResult, predictions: list[Path], inference_s: float | None) -> None:
    """Latency, TTFT, tokens and throughput of the answers on disk (evalscope times each request)."""
    latency: list[float] = []
    ttft: list[float] = []
    output_tokens = input_tokens = 0
    for path in predictions:
        for row in _jsonl(path):
            output = row.get("model_output") or {}
            perf = output.get("perf_metrics") or {}
            if output.get("error") or not isinstance(perf.get("latency"), (int, float)):
                continue
            latency.append(float(perf["latency"]))
            if isinstance(perf.get("ttft"), (int, float)):
                ttft.append(float(perf["ttft"]))
            usage = output.get("usage") or {}
            output_tokens += int(usage.get("output_tokens") or perf.get("output_tokens") or 0)
            input_tokens += int(usage.get("input_tokens") or perf.get("input_tokens") or 0)
    if not latency:
        return
    span = inference_s if inference_s and inference_s > 0 else None
    result.timing = {
        "requests": len(latency),
        "latency_ms": _percentiles(latency),
        "ttft_ms": _percentiles(ttft),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "output_tokens_mean": round(output_tokens / len(latency), 3),
        "inference_s": None if span is None else round(span, 3),
        "request_throughput": None if span is None else round(len(latency) / span, 3),
        "output_throughput": None if span is None else round(output_tokens / span, 3),
    }
