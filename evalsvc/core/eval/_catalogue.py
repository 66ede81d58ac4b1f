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
    spec = importlib.util.find_spec("evalscope")
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


@functools.lru_cache(maxsize=None)
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
        kind = {"vlm": "a multimodal (vlm)", "agent": "an agent", "aigc": "an image-generation"}.get(category, f"a {category}")
        return f"is {kind} benchmark; evalsvc evaluates text benchmarks"
    if meta.get("requires_judge"):
        return "is scored by an LLM judge, which evalsvc does not configure"
    if meta.get("sandbox_config"):
        return "needs a code-execution sandbox (docker), which evalsvc does not provide"
    return None


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
        "supported": reason is None,
        "unsupported_reason": reason,
    }


def list_benchmarks(*, include_unsupported: bool = False) -> list[dict[str, Any]]:
    """The benchmarks evalsvc can evaluate, from evalscope's catalogue, sorted by name.

    Args:
        include_unsupported: also list benchmarks evalsvc cannot run (multimodal, agent, LLM-judged,
            sandboxed), with `supported: False` and the reason.

    Returns:
        One dict per benchmark: name, pretty_name, description, tags, subsets, metric, few_shot_num,
        eval_split, train_split, dataset_id, samples, category, requires_local_dataset, supported,
        unsupported_reason.
    """
    index = benchmark_index() or {}
    entries = [_entry(name) for name in sorted(index)]
    return entries if include_unsupported else [e for e in entries if e["supported"]]


def check_benchmark(name: str) -> dict[str, Any]:
    """Raise ConfigError unless `name` is a benchmark evalsvc can run; return its metadata.

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
    return meta


def _suggest(name: str, index: dict[str, str]) -> str:
    runnable = [n for n in index if unsupported_reason(benchmark_meta(n)) is None]
    lowered = {n.lower(): n for n in runnable}
    close = [lowered[name.lower()]] if name.lower() in lowered else difflib.get_close_matches(
        name.lower(), list(lowered), n=1, cutoff=0.6)
    return f"did you mean {lowered.get(close[0], close[0])!r}?" if close else "see `evalsvc benchmarks`"


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
    # evalscope joins subset and split names onto the dataset folder to find its files
    # (<subset>_<split>.jsonl): a '/' or '..' there would read files outside it.
    for key in ("default_subset", "eval_split", "train_split"):
        if args.get(key) is not None:
            if not isinstance(args[key], str) or not args[key]:
                raise ConfigError(f"{field}.{key}", f"must be a non-empty name, got {args[key]!r}")
            _check_file_name(f"{field}.{key}", args[key], key.replace("_", " ").replace("default ", ""))
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
