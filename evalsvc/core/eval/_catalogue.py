"""The benchmark catalogue: evalscope's registry, read without importing evalscope.

evalscope ships a generated name -> module index (`benchmarks/_index.json`) and one metadata file per
benchmark (`benchmarks/_meta/<name>.json`). Reading them costs milliseconds, while `import evalscope`
costs ~1.5 s and takes over root logging, so the parent process (CLI, service) never imports it.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._extra import require_eval

TEXT_CATEGORY = "llm"
"""evalscope's category for text benchmarks; the others are vlm, agent and aigc."""

DATASET_ARG_KEYS = (
    "local_path", "dataset_id", "subset_list", "default_subset", "few_shot_num", "few_shot_random",
    "train_split", "eval_split", "prompt_template", "few_shot_prompt_template", "system_prompt",
    "query_template", "choice_instructions", "metric_list", "aggregation", "primary_metric", "filters",
    "shuffle", "shuffle_choices", "force_redownload", "review_timeout", "extra_params",
    "dataset_revision", "hf_dataset_id", "hf_dataset_revision",
)
"""Per-dataset options evalscope applies (BenchmarkMeta fields). evalscope silently ignores any
other key, so a typo such as `subsets` would run every subset: evalsvc rejects unknown keys."""


@functools.lru_cache(maxsize=1)
def _benchmarks_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec("evalscope")
    except (ImportError, ValueError):  # not importable (see _extra.eval_installed)
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "benchmarks"
    return path if (path / "_index.json").is_file() else None


@functools.lru_cache(maxsize=1)
def benchmark_index() -> dict[str, str] | None:
    """Every benchmark name evalscope registers (all categories), or None if the index is unavailable."""
    root = _benchmarks_dir()
    if root is None:
        return None
    try:
        data = json.loads((root / "_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@functools.cache
def benchmark_meta(name: str) -> dict[str, Any]:
    """evalscope's metadata for one benchmark ({} when it has none on disk)."""
    root = _benchmarks_dir()
    if root is None:
        return {}
    try:
        data = json.loads((root / "_meta" / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    meta = data.get("meta") or {}
    meta["_samples"] = (data.get("statistics") or {}).get("total_samples")
    return meta


def _overview(description: str | None) -> str:
    """The first paragraph of the Overview section of evalscope's markdown description."""
    text = description or ""
    if "## Overview" in text:
        text = text.split("## Overview", 1)[1]
    for para in text.strip().split("\n\n"):
        para = para.strip()
        if para and not para.startswith("#"):
            return re.sub(r"\s+", " ", para)
    return ""


def _metric_name(meta: dict[str, Any]) -> str | None:
    primary = meta.get("primary_metric")
    if isinstance(primary, dict) and primary.get("name"):
        return str(primary["name"])
    for metric in meta.get("metrics") or []:
        if isinstance(metric, str):
            return metric
        if isinstance(metric, dict) and metric:
            return str(next(iter(metric)))
    return None


def unsupported_reason(meta: dict[str, Any]) -> str | None:
    """Why evalsvc cannot run a benchmark, or None if it can."""
    category = meta.get("category")
    if category and category != TEXT_CATEGORY:
        kinds = {"vlm": "a multimodal (vlm)", "agent": "an agent", "aigc": "an image-generation"}
        kind = kinds.get(category, f"a {category}")
        return f"is {kind} benchmark; evalsvc evaluates text benchmarks"
    if meta.get("sandbox_config"):
        return "needs a code-execution sandbox (docker), which evalsvc does not provide"
    return None


def needs_judge(name: str) -> bool:
    """Whether evalscope scores `name` with an LLM judge (see _judge.py)."""
    from ._judge import needs_judge as judged

    return judged(name)


def _entry(name: str) -> dict[str, Any]:
    meta = benchmark_meta(name)
    reason = unsupported_reason(meta)
    return {
        "name": name,
        "pretty_name": meta.get("pretty_name") or name,
        "description": _overview(meta.get("description")),
        "tags": list(meta.get("tags") or []),
        "subsets": list(meta.get("subset_list") or []),
        "metric": _metric_name(meta),
        "few_shot_num": meta.get("few_shot_num"),
        "eval_split": meta.get("eval_split"),
        "train_split": meta.get("train_split") or None,
        "dataset_id": meta.get("dataset_id"),
        "samples": meta.get("_samples"),
        "category": meta.get("category"),
        "requires_local_dataset": bool(meta.get("requires_local_dataset")),
        "requires_judge": needs_judge(name),
        "supported": reason is None,
        "unsupported_reason": reason,
    }


def list_benchmarks(*, include_unsupported: bool = False) -> list[dict[str, Any]]:
    """The benchmarks evalsvc can evaluate, from evalscope's catalogue, sorted by name.

    Args:
        include_unsupported: also list benchmarks evalsvc cannot run (multimodal, agent, sandboxed), with
            `supported: False` and the reason. Judge-scored ones are listed with `requires_judge: True`:
            they run when the config has a `judge`.

    Returns:
        One dict per benchmark: name, pretty_name, description, tags, subsets, metric, few_shot_num,
        eval_split, train_split, dataset_id, samples, category, requires_local_dataset, requires_judge,
        supported, unsupported_reason.

    Raises:
        MissingExtra: evalscope is not installed (the `eval` extra).
    """
    require_eval()
    index = benchmark_index() or {}
    entries = [_entry(name) for name in sorted(index)]
    return entries if include_unsupported else [e for e in entries if e["supported"]]


def check_benchmark(name: str, *, judge: bool = False) -> dict[str, Any]:
    """Raise ConfigError unless `name` is a benchmark evalsvc can run (judge-scored ones only with a `judge`);
    return its metadata.

    Skips the check (returns {}) when evalscope's index is unavailable; the worker then reports.
    """
    index = benchmark_index()
    if index is None:
        return {}
    if name not in index:
        raise ConfigError("datasets", f"unknown benchmark {name!r}: {_suggest(name, index)}")
    meta = benchmark_meta(name)
    reason = unsupported_reason(meta)
    if reason:
        raise ConfigError("datasets", f"{name!r} {reason} (see `evalsvc benchmarks`)")
    if not judge and needs_judge(name):
        raise ConfigError("datasets", f"{name!r} is scored by an LLM judge: pass `judge` (an object with api_url, "
                          "model and api_key of an OpenAI-compatible judge model) to run it")
    return meta


def _suggest(name: str, index: dict[str, str]) -> str:
    runnable = [n for n in index if unsupported_reason(benchmark_meta(n)) is None]
    lowered = {n.lower(): n for n in runnable}
    close = [lowered[name.lower()]] if name.lower() in lowered else difflib.get_close_matches(
        name.lower(), list(lowered), n=1, cutoff=0.6)
    return f"did you mean {lowered.get(close[0], close[0])!r}?" if close else "see `evalsvc benchmarks`"


_REGISTER = re.compile(r"@register_(metric|filter|aggregation)\(\s*(?:name\s*=\s*)?(\[[^\]]*\]|'[^']*'|\"[^\"]*\")")


@functools.lru_cache(maxsize=1)
def registered_names() -> dict[str, frozenset[str]] | None:
    """The metric, filter and aggregation names evalscope registers, read from its source (no import).

    None when evalscope's source is not available (the check is then left to the worker).
    """
    root = _benchmarks_dir()
    if root is None:
        return None
    found: dict[str, set[str]] = {"metric": set(), "filter": set(), "aggregation": set()}
    for folder in ("metrics", "filters"):
        for path in (root.parent / folder).rglob("*.py"):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for kind, names in _REGISTER.findall(text):
                found[kind].update(re.findall(r"['\"]([^'\"]+)['\"]", names))
    if not found["metric"] or not found["filter"]:
        return None
    return {kind: frozenset(names) for kind, names in found.items()}


def _check_registered(field: str, name: Any, kind: str, also: tuple[str, ...] = ()) -> None:
    names = registered_names()
    if names is None:
        return
    if not isinstance(name, str) or not name:
        raise ConfigError(field, f"must name a {kind}, got {name!r}")
    known = names[kind] | set(also)
    if name not in known:
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        shown = sorted(known)
        hint = f"did you mean {close[0]!r}?" if close else \
            f"known: {', '.join(shown[:20])}{', ...' if len(shown) > 20 else ''}"
        raise ConfigError(field, f"unknown {kind} {name!r}: {hint}")


def _benchmark_metrics(meta: dict[str, Any]) -> tuple[str, ...]:
    out = []
    for metric in meta.get("metrics") or []:
        if isinstance(metric, str):
            out.append(metric)
        elif isinstance(metric, dict):
            out.extend(str(k) for k in metric)
    return tuple(out)


def _check_scoring(field: str, args: dict[str, Any], meta: dict[str, Any]) -> None:
    """metric_list, primary_metric, aggregation, filters and extra_params: names evalscope knows.

    evalscope resolves these only when it scores (an unknown metric left every score null, an unknown
    filter or extra parameter failed the run after loading the dataset): they are checked up front."""
    defaults = _benchmark_metrics(meta)
    metrics = list(defaults)
    if "metric_list" in args:
        value = args["metric_list"]
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{field}.metric_list", "must be a non-empty list of metric names")
        metrics = []
        for item in value:
            if isinstance(item, dict) and len(item) == 1 and isinstance(next(iter(item.values())), dict):
                item = next(iter(item))
            _check_registered(f"{field}.metric_list", item, "metric", defaults)
            metrics.append(item)
    if args.get("primary_metric") is not None and args["primary_metric"] not in metrics:
        raise ConfigError(f"{field}.primary_metric", f"must be one of the metrics computed "
                          f"({', '.join(map(str, metrics)) or 'none'}), got {args['primary_metric']!r}")
    if args.get("aggregation") is not None:
        _check_registered(f"{field}.aggregation", args["aggregation"], "aggregation",
                          (meta["aggregation"],) if isinstance(meta.get("aggregation"), str) else ())
    if args.get("filters") is not None:
        filters = args["filters"]
        if not isinstance(filters, dict):
            raise ConfigError(f"{field}.filters", "must be an object of filter name -> argument")
        for name in filters:
            _check_registered(f"{field}.filters", name, "filter")
    if args.get("extra_params") is not None:
        params = args["extra_params"]
        if not isinstance(params, dict):
            raise ConfigError(f"{field}.extra_params", "must be an object of parameter name -> value")
        declared = meta.get("extra_params") if isinstance(meta.get("extra_params"), dict) else None
        if declared is not None or meta:
            for key in params:
                if key not in (declared or {}):
                    accepted = ", ".join(sorted(declared or {})) or "none"
                    raise ConfigError(f"{field}.extra_params.{key}", f"unknown parameter (accepted: {accepted})")


def check_limit(limit: Any, datasets: list[str], dataset_args: dict[str, dict[str, Any]]) -> None:
    """A fraction `limit` must select at least one sample of every subset evaluated.

    evalscope takes int(size * fraction) samples of each subset: a fraction too small for a subset
    leaves it empty and the run fails after loading (or scores nothing). Sizes are those of evalscope's
    catalogue (the hub copies).

    Raises:
        ConfigError: field `limit`, naming the benchmark and the smallest fraction that works.
    """
    if not isinstance(limit, float) or limit >= 1:
        return
    for name in datasets:
        _check_fraction(limit, name, dataset_args.get(name) or {}, benchmark_meta(name))


def _check_fraction(limit: float, name: str, args: dict[str, Any], meta: dict[str, Any]) -> None:
    subsets = args.get("subset_list") or meta.get("subset_list") or []
    counts = {}
    try:
        raw = (_meta_statistics(name) or {}).get("subset_stats") or []
        counts = {str(s["name"]): int(s["sample_count"]) for s in raw if isinstance(s, dict)}
    except (KeyError, TypeError, ValueError):
        counts = {}
    sizes = [counts[s] for s in subsets if s in counts] or ([meta["_samples"]] if meta.get("_samples") else [])
    if not sizes:
        return
    smallest = min(sizes)
    if int(smallest * limit) < 1:
        raise ConfigError("limit", f"the fraction {limit:g} selects no sample of {name}'s smallest subset "
                          f"({smallest} samples): give at least {1 / smallest:.3g}, or an integer count")


@functools.cache
def _meta_statistics(name: str) -> dict[str, Any] | None:
    root = _benchmarks_dir()
    if root is None:
        return None
    try:
        data = json.loads((root / "_meta" / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    stats = data.get("statistics")
    return stats if isinstance(stats, dict) else None


def _check_file_name(field: str, value: str, what: str) -> None:
    if "/" in value or "\\" in value or "\x00" in value or value.startswith(".") or len(value) > 200:
        raise ConfigError(field, f"{value[:80]!r} is not a {what} name (no '/', '\\' or leading '.')")


def check_dataset_args(name: str, args: dict[str, Any], meta: dict[str, Any]) -> None:
    """Reject per-dataset options evalscope would silently ignore or choke on later."""
    field = f"dataset_args.{name}"
    for key in args:
        if key not in DATASET_ARG_KEYS:
            close = difflib.get_close_matches(key, DATASET_ARG_KEYS, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}?" if close else f"accepted: {', '.join(DATASET_ARG_KEYS)}"
            raise ConfigError(f"{field}.{key}", f"unknown option: {hint}")
    if "local_path" in args and (not isinstance(args["local_path"], str) or not args["local_path"].strip()):
        raise ConfigError(f"{field}.local_path", "must be a non-empty path")
    for key in ("dataset_id", "hf_dataset_id"):
        value = args.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{field}.{key}", f"must be a hub id ('owner/name') or a local path, got {value!r}")
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value):
            raise ConfigError(f"{field}.{key}", f"{value[:80]!r} looks like a URL; give a hub id ('owner/name') "
                              "or a local path")
    _check_scoring(field, args, meta)
    if "few_shot_num" in args:
        value = args["few_shot_num"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{field}.few_shot_num", f"must be an integer >= 0, got {value!r}")
    if "subset_list" in args:
        subsets = args["subset_list"]
        if (not isinstance(subsets, list) or not subsets
                or not all(isinstance(s, str) and s for s in subsets)):
            raise ConfigError(f"{field}.subset_list", "must be a non-empty list of subset names")
        for subset in subsets:
            _check_file_name(f"{field}.subset_list", subset, "subset")
        known = list(meta.get("subset_list") or [])
        # Benchmarks with a fixed list of several subsets cannot load any other (ceval's prompt looks
        # the subject up by name); single-subset ones may be pointed at a local copy's 'default'.
        if len(known) > 1:
            for subset in subsets:
                if subset not in known:
                    close = difflib.get_close_matches(subset, known, n=1, cutoff=0.6)
                    hint = f"did you mean {close[0]!r}?" if close else f"{name} has: {', '.join(known[:12])}" + (
                        ", ..." if len(known) > 12 else "")
                    raise ConfigError(f"{field}.subset_list", f"unknown subset {subset!r}: {hint}")
    # evalscope joins subset and split names onto the dataset folder to find its files
    # (<subset>_<split>.jsonl): a '/' or '..' there would read files outside it.
    for key in ("default_subset", "eval_split", "train_split"):
        if args.get(key) is not None:
            if not isinstance(args[key], str) or not args[key]:
                raise ConfigError(f"{field}.{key}", f"must be a non-empty name, got {args[key]!r}")
            _check_file_name(f"{field}.{key}", args[key], key.replace("_", " ").replace("default ", ""))

