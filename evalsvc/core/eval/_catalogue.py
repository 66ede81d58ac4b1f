"""The benchmark catalogue: evalscope's registry, read without importing evalscope.

evalscope ships a generated name -> module index (`benchmarks/_index.json`) and one metadata file per
benchmark (`benchmarks/_meta/<name>.json`). Reading them costs milliseconds, while `import evalscope`
costs ~1.5 s and takes over root logging, so the parent process (CLI, service) never imports it.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib.util
import json
import re
from dataclasses import dataclass
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


def metric_name(meta: dict[str, Any]) -> str | None:
    """A benchmark's headline metric: its `primary_metric`, else the first of its `metrics`."""
    primary = meta.get("primary_metric")
    if isinstance(primary, dict) and primary.get("name"):
        return str(primary["name"])
    for metric in meta.get("metrics") or []:
        if isinstance(metric, str):
            return metric
        if isinstance(metric, dict) and metric:
            return str(next(iter(metric)))
    return None


_AUDIO_TAGS = frozenset({"Audio", "TextToSpeech", "SpeechRecognition"})
_MULTIMODAL_TAGS = frozenset({"MultiModal", "Vision", "ImageEditing"})


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_packages(name: str) -> list[str]:
    """The pip packages `name`'s adapter requires that are not installed."""
    return list(dict.fromkeys(pip for module, pip in adapter_facts(name).imports if not _installed(module)))


def unsupported_reason(meta: dict[str, Any], name: str | None = None) -> str | None:
    """Why evalsvc cannot run a benchmark as installed, or None if it can.

    From evalscope's metadata (category, tags, the legacy `requires_judge` flag, a sandbox) and, given
    `name`, its adapter's source: a judge declared by its scoring policy, packages it checks for when it
    is built, docker for the benchmarks that build docker images."""
    category = meta.get("category")
    if category and category != TEXT_CATEGORY:
        kinds = {"vlm": "a multimodal (vlm)", "agent": "an agent", "aigc": "an image-generation"}
        kind = kinds.get(category, f"a {category}")
        return f"is {kind} benchmark; evalsvc evaluates text benchmarks"
    tags = set(meta.get("tags") or [])
    if tags & _AUDIO_TAGS:
        return "is an audio benchmark; evalsvc evaluates text benchmarks"
    if tags & _MULTIMODAL_TAGS:
        return "is a multimodal benchmark (images); evalsvc evaluates text benchmarks"
    if meta.get("sandbox_config"):
        return "needs a code-execution sandbox (docker), which evalsvc does not provide"
    params = meta.get("extra_params")
    if isinstance(params, dict) and any("docker" in str(key) for key in params):
        return "needs docker to build and run each task's environment, which evalsvc does not provide"
    missing = missing_packages(name) if name else []
    if missing:
        packages = " ".join(missing)
        return (f"needs the optional package{'s' if len(missing) > 1 else ''} {', '.join(missing)}, not installed "
                f"(pip install {packages}; `pip install 'evalsvc[eval-extras]'` installs the light ones)")
    return None


def needs_judge(name: str) -> bool:
    """Whether evalscope scores `name` with an LLM judge (see _judge.py)."""
    from ._judge import needs_judge as judged

    return judged(name)


def _entry(name: str) -> dict[str, Any]:
    meta = benchmark_meta(name)
    reason = unsupported_reason(meta, name)
    return {
        "name": name,
        "pretty_name": meta.get("pretty_name") or name,
        "description": _overview(meta.get("description")),
        "tags": list(meta.get("tags") or []),
        "subsets": list(meta.get("subset_list") or []),
        "metric": metric_name(meta),
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
    reason = unsupported_reason(meta, name)
    if reason:
        raise ConfigError("datasets", f"{name!r} {reason} (see `evalsvc benchmarks`)")
    if not judge and needs_judge(name):
        raise ConfigError("datasets", f"{name!r} is scored by an LLM judge: pass `judge` (an object with api_url, "
                          "model and api_key of an OpenAI-compatible judge model) to run it")
    return meta


def _suggest(name: str, index: dict[str, str]) -> str:
    runnable = [n for n in index if unsupported_reason(benchmark_meta(n), n) is None]
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


@dataclass(frozen=True)
class LoadLayout:
    """How a benchmark's adapter loads its data, which decides the layout of a local copy.

    - "subsets" (most adapters): one dataset config per subset, each with the eval (and few-shot) split;
    - "split_by_field": one config (`default_subset`) whose rows carry their subset in a field; evalscope
      loads it once and splits it into subsets (mmlu by `subject`, mmlu_pro by `category`, math_500 by
      `level`: the adapter's `reformat_subset`);
    - "split_as_subset": one config (`default_subset`) whose splits are the subsets.
    """

    kind: str
    default_subset: str = "default"


_BASE_SUBSET = "default"
"""BenchmarkMeta's default `default_subset`."""


@dataclass(frozen=True)
class AdapterFacts:
    """What a benchmark's adapter source says about running it (read without importing evalscope)."""

    layout: LoadLayout
    judge: str | None = None
    """How the adapter scores with an LLM judge by default: "judge_only" (no rule scoring at all) or
    "judge_default" (rules exist, a judge is the default), from its `scoring_policy` (or the legacy
    `llm_judge_default = True`); None: rules. alpaca_eval and aa_lcr declare it there, without the
    catalogue's legacy `requires_judge` flag."""
    imports: tuple[tuple[str, str], ...] = ()
    """(module, pip package) pairs the adapter requires when it is built (evalscope's `check_import`)."""
    hf_dataset_id: str | None = None
    """The benchmark's dataset on Hugging Face, when its registration names one."""


_JUDGE_POLICIES = {"JUDGE_ONLY": "judge_only", "JUDGE_DEFAULT": "judge_default"}
"""evalscope's ScoringPolicy members that score with an LLM judge unless told otherwise."""

_PIP_NAMES = {"sklearn": "scikit-learn", "comet": "unbabel-comet", "bert_score": "bert-score"}
"""Modules whose pip package has another name."""


@functools.cache
def adapter_facts(name: str) -> AdapterFacts:
    """Facts about `name`'s adapter, read from its source (the class its @register_benchmark decorates,
    and its base classes in evalscope's modules). Unknown (no source): the common layout, nothing else."""
    index = benchmark_index() or {}
    module = index.get(name)
    root = _benchmarks_dir()
    tree = _module_tree(root.parent, module) if module and root is not None else None
    if tree is None or root is None:
        return AdapterFacts(LoadLayout("subsets"))
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        meta = _registered_meta(node)
        if meta.get("name") != name:
            continue
        facts = _class_facts(root.parent, str(module), tree, node, depth=0)
        default = str(meta.get("default_subset") or _BASE_SUBSET)
        kind = ("split_as_subset" if facts.get("split_as_subset") else
                "split_by_field" if facts.get("reformat_subset") else "subsets")
        hf_id = meta.get("hf_dataset_id")
        return AdapterFacts(LoadLayout(kind, default), judge=facts.get("judge"),
                            imports=tuple(dict.fromkeys(facts.get("imports") or ())),
                            hf_dataset_id=hf_id if isinstance(hf_id, str) and hf_id else None)
    return AdapterFacts(LoadLayout("subsets"))


def load_layout(name: str) -> LoadLayout:
    """The layout `name`'s adapter loads (see LoadLayout).

    The adapter's class (or a base class) sets `self.reformat_subset = True` or `self.split_as_subset =
    True` in its `__init__`, and its `@register_benchmark(BenchmarkMeta(name=..., default_subset=...))`
    names the single config.
    """
    return adapter_facts(name).layout


@functools.cache
def _module_tree(package_root: Path, module: str) -> ast.Module | None:
    parts = module.split(".")
    if parts[0] != "evalscope":
        return None
    path = package_root.joinpath(*parts[1:]).with_suffix(".py")
    try:
        return ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return None


def _registered_meta(node: ast.ClassDef) -> dict[str, Any]:
    """The constant keyword arguments of the BenchmarkMeta in the class's @register_benchmark."""
    for deco in node.decorator_list:
        if not (isinstance(deco, ast.Call) and getattr(deco.func, "id", None) == "register_benchmark"):
            continue
        for arg in deco.args:
            if isinstance(arg, ast.Call):
                return {kw.arg: kw.value.value for kw in arg.keywords
                        if kw.arg and isinstance(kw.value, ast.Constant)}
    return {}


def _class_facts(package_root: Path, module: str, tree: ast.Module, node: ast.ClassDef, *,
                 depth: int) -> dict[str, Any]:
    """reformat_subset / split_as_subset as `__init__` sets them, `check_import`s in `__init__`, and whether
    a benchmark class (not evalscope's generic base adapters) defines `judge_definition`; bases first."""
    facts: dict[str, Any] = {"imports": []}
    if depth < 6:
        for base in reversed(node.bases):  # the first base wins, as in the MRO
            base_name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", None)
            found = _find_class(package_root, module, tree, base_name) if base_name else None
            if found is not None:
                inherited = _class_facts(package_root, found[0], found[1], found[2], depth=depth + 1)
                facts["imports"] = facts["imports"] + inherited.pop("imports")
                facts.update(inherited)
    for item in node.body:
        if isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name):
            # class attributes: `scoring_policy = ScoringPolicy.JUDGE_ONLY` (or JUDGE_DEFAULT) scores with an
            # LLM judge by default; so did the legacy `llm_judge_default = True`
            attr, value = item.targets[0].id, item.value
            if attr == "scoring_policy" and isinstance(value, ast.Attribute):
                facts["judge"] = _JUDGE_POLICIES.get(value.attr)
            elif attr == "llm_judge_default" and isinstance(value, ast.Constant):
                facts["judge"] = "judge_default" if value.value else None
        if not (isinstance(item, ast.FunctionDef) and item.name == "__init__"):
            continue
        for stmt in ast.walk(item):
            if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant):
                for target in stmt.targets:
                    if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                            and target.value.id == "self" and target.attr in ("reformat_subset", "split_as_subset")):
                        facts[target.attr] = bool(stmt.value.value)
        for stmt in item.body:  # unconditional checks only (wmt24pp checks `comet` only for its COMET metric)
            if (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
                    and getattr(stmt.value.func, "id", None) == "check_import"):
                facts["imports"] = facts["imports"] + _check_import_args(stmt.value)
    return facts


def _check_import_args(call: ast.Call) -> list[tuple[str, str]]:
    """(module, pip package) pairs of a `check_import(module_name, package_name, ...)` call."""
    args = {kw.arg: kw.value for kw in call.keywords if kw.arg}
    for key, value in zip(("module_name", "package_name"), call.args, strict=False):
        args.setdefault(key, value)

    def names(value: ast.expr | None) -> list[str]:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return [value.value]
        if isinstance(value, (ast.List, ast.Tuple)):
            return [e.value for e in value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        return []

    modules, packages = names(args.get("module_name")), names(args.get("package_name"))
    if len(packages) != len(modules):
        packages = [_PIP_NAMES.get(m, m) for m in modules]
    return list(zip(modules, packages, strict=True))


def _find_class(package_root: Path, module: str, tree: ast.Module,
                name: str) -> tuple[str, ast.Module, ast.ClassDef] | None:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return module, tree, node
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any(a.name == name for a in node.names):
            other_module = _absolute(module, node)
            if other_module is None:
                continue
            other = _module_tree(package_root, other_module)
            if other is None:  # a package: its __init__
                other_module += ".__init__"
                other = _module_tree(package_root, other_module)
            if other is not None and other is not tree:
                return _find_class(package_root, other_module, other, name)
    return None


def _absolute(module: str, node: ast.ImportFrom) -> str | None:
    """The absolute module name of a `from X import ...` in `module` (which may be a package's __init__)."""
    if not node.level:
        return node.module
    package = module.removesuffix(".__init__") if module.endswith(".__init__") else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package
