"""`build_eval_report(run_dir)`: the eval run's report.html, from summary.json, config.json and evalscope's files.

Samples come from each dataset's predictions (the prompt and the model's answer) joined by index with its reviews
(the reference and the score). Samples whose request failed left no prediction: they are listed as errored rows
(index and reason), so the table always accounts for every requested sample it can.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

from .._io import utc_now_iso, write_atomic
from ..errors import ConfigError
from ._charts import scores_figure
from ._data import read_json, redact_config
from ._page import REPORT_NAME, chart_html, env, format_value, setting_text

log = logging.getLogger("evalsvc.report")

TEXT_LIMIT = 20_000
"""Characters of a prompt or answer kept in the page (the rest is cut, and the cut is said)."""


@dataclass(frozen=True)
class Sample:
    """One row of the sample table."""

    dataset: str
    subset: str
    index: int | None
    prompt: str
    answer: str
    reference: str
    extracted: str
    score: float | None
    status: str
    """correct | wrong | errored | unscored."""


@dataclass
class EvalRun:
    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    samples: list[Sample] = field(default_factory=list)


def _text(value: Any) -> str:
    if value is None:
        return ""
    text: str
    if isinstance(value, list):  # multimodal content: its text parts
        text = "\n".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in value)
    elif isinstance(value, dict):
        text = orjson.dumps(value).decode()
    else:
        text = str(value)
    if len(text) > TEXT_LIMIT:
        return text[:TEXT_LIMIT] + f"… [{len(text) - TEXT_LIMIT} more characters]"
    return text


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    try:
        with path.open("rb") as fh:
            for line in fh:
                if line.strip():
                    try:
                        row = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue  # a line cut short by a stopped run
                    if isinstance(row, dict):
                        rows.append(row)
    except OSError:
        pass
    return rows


def _prompt(messages: Any) -> str:
    users = [m for m in messages or [] if isinstance(m, dict) and m.get("role") == "user"]
    return _text(users[-1].get("content")) if users else ""


def _answer(prediction: dict[str, Any]) -> tuple[str, str | None]:
    output = prediction.get("model_output") or {}
    choices = output.get("choices") or []
    message = (choices[0].get("message") or {}) if choices else {}
    return _text(message.get("content")), (_text(output["error"]) if output.get("error") else None)


def _score(review: dict[str, Any]) -> tuple[float | None, str]:
    score = (review.get("sample_score") or {}).get("score") or {}
    values = score.get("value") or {}
    name = score.get("main_score_name")
    value = values.get(name) if name in values else next(iter(values.values()), None) if values else None
    try:
        number = float(value) if value is not None else None
    except (TypeError, ValueError):
        number = None
    return number, _text(score.get("extracted_prediction"))


def _reference(target: Any) -> str:
    if isinstance(target, list):
        return ", ".join(_text(t) for t in target)
    return _text(target)


def dataset_samples(run_dir: Path, name: str, entry: dict[str, Any]) -> list[Sample]:
    """The sample rows of one dataset: every prediction on disk, then the errored samples it lacks."""
    samples: list[Sample] = []
    reason = (entry.get("sample_errors") or ["the request failed"])[0]
    subsets = entry.get("subsets") or {}
    for pred_file in sorted(run_dir.glob(f"{name}/predictions/*/{name}_*.jsonl")):
        subset = pred_file.stem[len(name) + 1:]
        reviews = {r.get("index"): r for r in _jsonl(pred_file.parent.parent.parent / "reviews"
                                                     / pred_file.parent.name / pred_file.name)}
        seen: set[int] = set()
        for pred in _jsonl(pred_file):
            index = pred.get("index")
            if isinstance(index, int):
                seen.add(index)
            answer, error = _answer(pred)
            review = reviews.get(index)
            score, extracted = _score(review) if review else (None, "")
            status = ("errored" if error else "unscored" if score is None
                      else "correct" if score >= 1.0 else "wrong")
            samples.append(Sample(name, subset, index if isinstance(index, int) else None,
                                  _prompt(pred.get("messages")), error or answer,
                                  _reference(review.get("target")) if review else "", extracted, score, status))
        counts = subsets.get(subset) or {}
        errored = int(counts.get("errored") or 0)
        requested = counts.get("requested")
        missing: list[int | None] = []
        if isinstance(requested, int):
            missing.extend(sorted(set(range(requested)) - seen))
        if len(missing) != errored:
            missing = [None] * errored  # the indices are unknown: one unnumbered row per errored sample
        for index in missing:
            samples.append(Sample(name, subset, index, "", f"no answer: {reason}", "", "", None, "errored"))
    return samples


def load_eval_run(run_dir: str | Path) -> EvalRun:
    """Read an eval run directory (summary.json, config.json, each dataset's predictions and reviews).

    Raises:
        ConfigError: `run_dir` is not an eval run directory.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise ConfigError("DIR", f"{str(path)!r} is not a directory")
    summary, settings = _read_eval_files(path)
    if summary is None or settings is None:
        raise ConfigError("DIR", f"{str(path)!r} is not an eval run directory "
                                 "(it needs the config.json and summary.json that `evalsvc eval` writes)")
    run = EvalRun(path=path, config=redact_config(settings), summary=summary)
    for name, entry in summary["result"].items():
        run.samples.extend(dataset_samples(path, str(name), entry if isinstance(entry, dict) else {}))
    return run


def _read_eval_files(path: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """summary.json with its per-dataset `result`, and config.json's `config` (with `datasets`); None if not."""
    summary = read_json(path / "summary.json")
    config = read_json(path / "config.json") or {}
    settings = config.get("config")
    if summary is None or not isinstance(summary.get("result"), dict):
        summary = None
    if not isinstance(settings, dict) or "datasets" not in settings:
        settings = None
    return summary, settings


def is_eval_run(run_dir: str | Path) -> bool:
    """Whether `run_dir` holds the summary.json and config.json an eval run writes."""
    summary, settings = _read_eval_files(Path(run_dir))
    return summary is not None and settings is not None


def _ci_text(ci: Any) -> str:
    """"[low, high]" of a 95 % interval, or "" when there is none."""
    if not isinstance(ci, list) or len(ci) != 2 or not all(isinstance(v, (int, float)) for v in ci):
        return ""
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def render_eval_report(run: EvalRun) -> str:
    """The report page of a read eval run, as HTML text."""
    datasets = []
    for name, d in run.summary["result"].items():
        datasets.append({
            "name": str(name), "metric": d.get("metric") or "", "score": d.get("score"),
            "score_text": format_value(d.get("score"), 4), "ci95": d.get("ci95"), "ci_text": _ci_text(d.get("ci95")),
            # the interval as the chart's error bar
            "low": d["ci95"][0] if _ci_text(d.get("ci95")) else None,
            "high": d["ci95"][1] if _ci_text(d.get("ci95")) else None,
            "requested": d.get("requested"),
            "requested_text": format_value(d.get("requested"), 0), "scored": d.get("scored", 0),
            "errored": d.get("errored", 0), "status": d.get("status") or "", "error": d.get("error"),
            "incomplete": bool(d.get("incomplete")),
            "subsets": [{"name": s, "score_text": format_value(v.get("score"), 4), "ci_text": _ci_text(v.get("ci95")),
                         "requested_text": format_value(v.get("requested"), 0),
                         "scored": v.get("scored"), "errored": v.get("errored", 0)}
                        for s, v in (d.get("subsets") or {}).items()],
            "categories": [{"name": c, "score_text": format_value(v.get("score"), 4), "scored": v.get("scored"),
                            "subsets": ", ".join(v.get("subsets") or [])}
                           for c, v in (d.get("categories") or {}).items()],
            "sample_errors": d.get("sample_errors") or [],
        })
    counts = {s: sum(1 for x in run.samples if x.status == s) for s in ("correct", "wrong", "errored", "unscored")}
    generation = run.config.get("generation_config")
    return env().get_template("eval.html.j2").render(
        title=f"evalsvc eval · {run.summary.get('model') or run.config.get('model', '')}",
        model=run.summary.get("model") or run.config.get("model", ""), run_dir=run.path.name,
        status=run.summary.get("status"), error=run.summary.get("error"),
        started_at=run.summary.get("started_at"), finished_at=run.summary.get("finished_at"),
        built_at=utc_now_iso(), datasets=datasets, samples=run.samples, counts=counts,
        generation=[(k, setting_text(v)) for k, v in generation.items()] if isinstance(generation, dict) else [],
        settings=[(k, setting_text(v)) for k, v in run.config.items() if k not in ("work_dir", "generation_config")],
        chart=chart_html(scores_figure(("", datasets)), "scores"), plotlyjs=get_plotlyjs(),
        format_value=format_value,
    )


def build_eval_report(run_dir: str | Path) -> Path:
    """(Re)build `<run_dir>/report.html` from the files an eval run wrote there; returns its path.

    Raises:
        ConfigError: `run_dir` is not an eval run directory.
    """
    run = load_eval_run(run_dir)
    path = write_atomic(run.path / REPORT_NAME, render_eval_report(run))
    log.debug("wrote %s", path)
    return path
