"""Turn an EvalConfig into one explicit evalscope task per dataset, checking everything first.

Nothing here imports evalscope or starts a process: every check that can fail on user input runs
before any work starts, and raises ConfigError naming the field.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._paths import cache_dir
from ..config import EvalConfig
from ..errors import ConfigError
from ._catalogue import LoadLayout, benchmark_meta, load_layout, metric_name
from ._judge import generation_options, judge_task_config

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.md"
DATASET_INFOS = "dataset_infos.json"
"""evalscope deletes this file from the folder it loads a local dataset from (api/dataset/hub.py)."""


@dataclass(frozen=True)
class LocalMirror:
    """A linked copy of a local dataset folder that holds dataset_infos.json, without that file.

    evalscope loads `link`: a path that stays the same for a folder (evalscope's resume identity and
    the `datasets` cache key include it), pointing at `content`, the tree of symlinks for the folder's
    current files. Both live in evalsvc's cache; the user's folder is only read.
    """

    source: Path
    link: Path
    content: Path


@dataclass
class DatasetPlan:
    """What one worker will run."""

    name: str
    args: dict[str, Any]
    """dataset_args for evalscope, local_path and subset_list resolved."""
    notes: list[str] = field(default_factory=list)
    """Things the user should know about how the dataset was resolved (shown as log events)."""
    hf_cache: str | None = None
    """The `datasets` cache folder of a local copy: its own, keyed by its path and file stats."""
    mirror: LocalMirror | None = None
    """The linked copy `local_path` points at (built by build_mirror before the worker starts)."""


@dataclass
class EvalPlan:
    config: EvalConfig
    datasets: list[DatasetPlan]
    resume_dir: Path | None
    """The earlier run directory to resume (use_cache), or None for a fresh run directory."""


def api_base(url: str) -> str:
    """The OpenAI base URL: evalscope appends /chat/completions itself."""
    url = url.rstrip("/")
    return url[: -len("/chat/completions")] if url.endswith("/chat/completions") else url


def plan_eval(config: EvalConfig) -> EvalPlan:
    """Validate what EvalConfig alone cannot (catalogue, local copies, the run to resume).

    Raises:
        ConfigError: an unknown benchmark or option, a missing local copy, a bad use_cache directory.
    """
    dataset_dir = None
    if config.dataset_dir is not None:
        dataset_dir = Path(config.dataset_dir).expanduser().resolve()
        if not dataset_dir.is_dir():
            raise ConfigError("dataset_dir", f"is not a directory: {dataset_dir}")
    plans = []
    for name in config.datasets:
        meta = benchmark_meta(name)  # name and options were checked when the EvalConfig was built
        args = dict(config.dataset_args.get(name) or {})
        notes: list[str] = []
        if args.get("local_path"):
            local = Path(args["local_path"]).expanduser().resolve()
            if not local.exists():
                raise ConfigError(f"dataset_args.{name}.local_path", f"does not exist: {local}")
            _resolve_local(name, local, args, meta, notes, field_name=f"dataset_args.{name}.local_path")
        elif dataset_dir is not None:
            local = dataset_dir / name
            if not local.is_dir():
                present = sorted(p.name for p in dataset_dir.iterdir() if p.is_dir())
                shown = ", ".join(present[:8]) + (", ..." if len(present) > 8 else "")
                raise ConfigError("dataset_dir", f"has no folder for {name!r} (looked for {local}; "
                                  f"found: {shown or 'nothing'})")
            _resolve_local(name, local, args, meta, notes, field_name="dataset_dir")
        if config.repeats > 1 and "aggregation" not in args and meta.get("aggregation", "mean") == "mean":
            # evalscope's mean plus pass@n for every n <= repeats; the score stays the mean over all answers
            args["aggregation"] = "mean_and_pass_at_k"
        if str(args.get("aggregation") or "").startswith("mean_and_"):
            # mean plus pass@n / vote@n / pass^n: evalscope needs the headline named, or fails after the run
            # ("no unique primary metric")
            primary = args.get("primary_metric") or metric_name(meta)
            if primary is not None and not isinstance(primary, dict):
                args["primary_metric"] = {"name": primary, "aggregation": "mean"}
        hf_cache = mirror = None
        if args.get("local_path"):
            source = Path(args["local_path"])
            key = _local_key(source)
            hf_cache = str(cache_dir() / "datasets" / f"{name}-{key}")
            if source.is_dir() and (source / DATASET_INFOS).exists():
                folder = f"{name}-{hashlib.sha256(str(source).encode()).hexdigest()[:16]}"
                mirror = LocalMirror(source=source, link=cache_dir() / "local" / folder,
                                     content=cache_dir() / "local" / f"{folder}-{key}")
                args["local_path"] = str(mirror.link)
        plans.append(DatasetPlan(name=name, args=args, notes=notes, hf_cache=hf_cache, mirror=mirror))
    resume_dir = None
    if config.use_cache is not None:
        resume_dir = Path(config.use_cache).expanduser().resolve()
        if not resume_dir.is_dir():
            raise ConfigError("use_cache", f"is not a directory: {resume_dir}")
        if not (resume_dir / CONFIG_FILE).is_file():
            raise ConfigError("use_cache", f"is not an evalsvc evaluation output directory (no {CONFIG_FILE} "
                              f"in {resume_dir})")
        check_resumable(config, resume_dir)
    return EvalPlan(config=config, datasets=plans, resume_dir=resume_dir)


_RESUME_KEYS = ("model", "api_url", "limit", "repeats", "seed", "generation_config", "judge")
"""What evalscope's resume identity holds (evaluation_versioning._fingerprint_task_mapping): a resumed run
that differs in one of them is refused by evalscope per dataset, after the run has started."""
_TRANSPORT_OPTIONS = ("timeout", "stream")
"""generation_config options evalscope leaves out of that identity: they do not change the answers."""
_JUDGE_TRANSPORT = ("api_key", "concurrency")


def _resume_view(data: dict[str, Any], key: str) -> Any:
    value = data.get(key)
    if key == "generation_config" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in _TRANSPORT_OPTIONS}
    if key == "judge" and isinstance(value, dict):
        view = {k: v for k, v in value.items() if k not in _JUDGE_TRANSPORT}
        if isinstance(view.get("generation_config"), dict):
            view["generation_config"] = _resume_view(view, "generation_config")
        return view
    return value


def check_resumable(config: EvalConfig, resume_dir: Path) -> None:
    """Refuse, before any work, a resume whose settings differ from the run it resumes where evalscope would.

    Raises:
        ConfigError: field use_cache, naming the setting that differs and its value in the earlier run.
    """
    import json

    try:
        earlier = json.loads((resume_dir / CONFIG_FILE).read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError, AttributeError):
        return  # unreadable: evalscope's own check still applies
    if not isinstance(earlier, dict):
        return
    now = config.to_dict()
    for key in _RESUME_KEYS:
        if key not in earlier:
            continue  # written by an evalsvc without that field: its default then
        before, after = _resume_view(earlier, key), _resume_view(now, key)
        if before != after:
            raise ConfigError("use_cache", f"the run in {resume_dir} was made with {key}={json.dumps(before)}, "
                              f"this one has {key}={json.dumps(after)}: a resumed run must ask the same (its "
                              "answers on disk were made with it); give the earlier value or start a new run")


_HUB_PROBE_TIMEOUT_S = 2.0
_hub_reachable: dict[str, tuple[float, bool]] = {}


def check_hub(plan: EvalPlan) -> None:
    """Raise ConfigError (field dataset_dir) at once when a dataset must come from the hub and cannot.

    Called after the preflight: an unreachable endpoint is the first thing to report."""
    for dataset in plan.datasets:
        if not dataset.args.get("local_path"):
            meta = benchmark_meta(dataset.name)
            _require_hub(dataset.name, str(dataset.args.get("dataset_id") or meta.get("dataset_id") or ""))


def _require_hub(name: str, dataset_id: str) -> None:
    """A benchmark without a local copy is downloaded from ModelScope: fail at once, in one English line,
    when it is not in the ModelScope cache and the hub cannot be reached (offline, the hub library retries
    for ~18 s and then fails in Chinese)."""
    if not dataset_id or os.path.exists(dataset_id):
        return
    cache = Path(os.environ.get("MODELSCOPE_CACHE") or Path.home() / ".cache" / "modelscope" / "hub").expanduser()
    if (cache / "datasets" / dataset_id).exists():
        return
    domain = (os.environ.get("MODELSCOPE_DOMAIN") or "www.modelscope.cn").removeprefix("https://")
    domain = domain.removeprefix("http://").split("/")[0]
    if not _reachable(domain):
        raise ConfigError("dataset_dir", f"{name} has no local copy and the dataset hub {domain} cannot be reached "
                          f"(offline?): give dataset_dir (--dataset-dir), a folder with one sub-folder per benchmark "
                          f"(`evalsvc datasets prepare {name} --to DIR` fills one where the hub can be reached; "
                          f"the service's --dataset-dir sets it for every request), or dataset_args.{name}.local_path")


def _reachable(domain: str) -> bool:
    import socket
    import time

    now = time.monotonic()
    known = _hub_reachable.get(domain)
    if known is not None and now - known[0] < 60:
        return known[1]
    host, _, port = domain.rpartition(":") if domain.count(":") == 1 else (domain, "", "")
    try:
        with socket.create_connection((host or domain, int(port) if port.isdigit() else 443),
                                      timeout=_HUB_PROBE_TIMEOUT_S):
            ok = True
    except (OSError, ValueError):
        ok = False
    _hub_reachable[domain] = (now, ok)
    return ok


def _local_key(root: Path) -> str:
    """A key that changes whenever the local copy's location or any of its files change.

    `datasets` keys the cache of a local folder on its name and config only: without a cache folder
    per key, two copies both called 'gsm8k', or one edited in place, would be served from each other's cache.
    """
    digest = hashlib.sha256(str(root).encode())
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        st = path.stat()
        digest.update(f"\0{path.relative_to(root) if path != root else path.name}\0{st.st_size}\0{st.st_mtime_ns}"
                      .encode())
    return digest.hexdigest()[:16]


def build_mirror(mirror: LocalMirror) -> None:
    """Build the linked copy of `mirror.source` (unless it exists) and point `mirror.link` at it.

    Safe for runs that build the same copy at once: each tree is built aside and renamed into place,
    and the link is replaced atomically.

    Raises:
        OSError: the cache folder cannot be written.
    """
    parent = mirror.link.parent
    parent.mkdir(parents=True, exist_ok=True)
    if not mirror.content.is_dir():
        building = Path(tempfile.mkdtemp(prefix=f".{mirror.content.name}.", dir=parent))
        try:
            _link_tree(mirror.source, building)
            try:
                os.rename(building, mirror.content)
            except OSError:
                if not mirror.content.is_dir():  # not just another run having built it first
                    raise
        finally:
            shutil.rmtree(building, ignore_errors=True)
    if os.path.islink(mirror.link) and os.readlink(mirror.link) == str(mirror.content):
        return
    swap = parent / f".{mirror.link.name}.{uuid.uuid4().hex}"
    os.symlink(mirror.content, swap)
    try:
        os.replace(swap, mirror.link)
    except OSError:
        os.unlink(swap)
        raise


def _link_tree(source: Path, dest: Path) -> None:
    """Recreate `source`'s folders under `dest` with a symlink per file, leaving out dataset_infos.json."""
    for folder, dirs, files in os.walk(source):
        here = Path(folder)
        into = dest / here.relative_to(source)
        for name in list(dirs):
            if (here / name).is_symlink():  # link linked folders as they are (no walking into loops)
                os.symlink(here / name, into / name)
                dirs.remove(name)
            else:
                (into / name).mkdir()
        for name in files:
            if here == source and name == DATASET_INFOS:
                continue
            os.symlink(here / name, into / name)


def _read_local_configs(root: Path) -> dict[str, set[str] | None] | None:
    """Subset name -> split names from a local copy's README `configs:` block (None: no block)."""
    readme = root / "README.md"
    if not readme.is_file():
        return None
    text = readme.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end < 0:
        return None
    import yaml  # a dependency of evalscope; only needed for local copies

    try:
        front = yaml.safe_load(text[3:end]) or {}
    except yaml.YAMLError:
        return None
    configs = front.get("configs") if isinstance(front, dict) else None
    if not isinstance(configs, list):
        return None
    out: dict[str, set[str] | None] = {}
    for entry in configs:
        if not isinstance(entry, dict) or not entry.get("config_name"):
            continue
        files = entry.get("data_files")
        splits: set[str] | None = None
        if isinstance(files, list) and all(isinstance(f, dict) and "split" in f for f in files):
            splits = {str(f["split"]) for f in files}
        elif isinstance(files, dict):
            splits = {str(k) for k in files}
        out[str(entry["config_name"])] = splits
    return out


def _resolve_local(name: str, root: Path, args: dict[str, Any], meta: dict[str, Any], notes: list[str],
                   *, field_name: str) -> None:
    """Point evalscope at a local copy and pick the subsets it actually holds."""
    args["local_path"] = str(root)
    if not root.is_dir():
        return  # a single data file: evalscope/datasets decide
    known = list(meta.get("subset_list") or [])
    local = _read_local_configs(root)
    layout = load_layout(name)
    if layout.kind != "subsets":
        _resolve_one_config(name, root, args, meta, layout, local, field_name=field_name)
        return
    requested = args.get("subset_list")
    if local is None:
        if len(known) <= 1 and requested is None:
            # A README-less folder of split files loads as the 'default' config.
            args["subset_list"] = ["default"]
            return
        if requested is None:
            raise ConfigError(field_name, f"the local copy of {name!r} at {root} has no README.md with a "
                              "`configs:` block naming its subsets")
        return
    if requested is not None:
        missing = [s for s in requested if s not in local]
        if missing:
            raise ConfigError(f"dataset_args.{name}.subset_list", f"the local copy at {root} has no subset "
                              f"{missing[0]!r} (it has: {', '.join(local)})")
        subsets = list(requested)
    else:
        subsets = [s for s in known if s in local]
        if not subsets:
            if len(known) <= 1 and len(local) == 1:
                subsets = list(local)
            else:
                raise ConfigError(field_name, f"the local copy of {name!r} at {root} has subsets "
                                  f"{', '.join(local)}, none of which {name} knows")
        if subsets != known:
            args["subset_list"] = subsets
            if len(known) > 1:
                notes.append(f"the local copy holds {len(subsets)} of its {len(known)} subsets; "
                             "evaluating those")
    eval_split = args.get("eval_split") or meta.get("eval_split")
    train_split = args.get("train_split") or meta.get("train_split")
    shots = args.get("few_shot_num", meta.get("few_shot_num") or 0)
    for subset in subsets:
        splits = local.get(subset)
        if splits is None:
            continue
        if eval_split and eval_split not in splits:
            raise ConfigError(field_name, f"the local copy of {name!r} at {root} has no {eval_split!r} split "
                              f"for subset {subset!r} (it has: {', '.join(sorted(splits))})")
        if shots and train_split and train_split not in splits:
            raise ConfigError(field_name, f"the local copy of {name!r} at {root} has no {train_split!r} split "
                              f"for the {shots}-shot examples of subset {subset!r}: add it, or set "
                              f"dataset_args.{name}.few_shot_num to 0")


_SPLIT_WORDS = {"train": ("train", "training"), "validation": ("validation", "valid", "dev", "val"),
                "test": ("test", "testing", "eval", "evaluation")}
"""How `datasets` names the split of a data file in a folder without a `configs:` block (by a word of its name)."""


def _file_splits(root: Path) -> set[str]:
    """The splits `datasets` finds in a folder of data files without a README `configs:` block."""
    import re

    found: set[str] = set()
    for path in root.rglob("*"):
        if not path.is_file() or path.name.startswith(".") or path.name == "README.md":
            continue
        words = set(re.split(r"[-_. /]+", str(path.relative_to(root)).lower()))
        found.update(split for split, names in _SPLIT_WORDS.items() if words & set(names))
    return found


def _resolve_one_config(name: str, root: Path, args: dict[str, Any], meta: dict[str, Any], layout: LoadLayout,
                        local: dict[str, set[str] | None] | None, *, field_name: str) -> None:
    """A local copy of a benchmark whose adapter loads ONE config (`default_subset`) and makes subsets of it:
    by a field of its rows (split_by_field: mmlu, mmlu_pro, math_500, ...) or by its splits (split_as_subset).

    The copy holds that one config: either a README `configs:` block naming it (or naming a single
    config, whatever it is called), or no README and data files named after their splits (test.jsonl, ...),
    which `datasets` loads as the config 'default'.
    """
    config = str(args.get("default_subset") or layout.default_subset)
    how = ("splits it into subsets by a field of its rows" if layout.kind == "split_by_field"
           else "takes its splits as the subsets")
    splits: set[str] | None
    if local is None:
        config, splits = "default", _file_splits(root)
        where = f"the data files at {root}"
    elif config in local or len(local) == 1:
        config = config if config in local else next(iter(local))
        splits, where = local[config], f"config {config!r} of the local copy at {root}"
    else:
        raise ConfigError(field_name, f"{name} loads one dataset config, {config!r}, and {how}; the local copy "
                          f"at {root} has configs {', '.join(local)} but not {config!r} (see the local copy "
                          "layout in the docs)")
    if config != layout.default_subset or "default_subset" in args:
        args["default_subset"] = config
    if splits is None:
        return  # data_files given in a shape that does not name splits: datasets decides
    if layout.kind == "split_as_subset":
        known = list(meta.get("subset_list") or [])
        requested = args.get("subset_list")
        subsets = [s for s in (requested or known) if s in splits]
        missing = [s for s in (requested or []) if s not in splits]
        if missing or not subsets:
            raise ConfigError(f"dataset_args.{name}.subset_list" if missing else field_name,
                              f"{name} takes the splits of {where} as its subsets; it has "
                              f"{', '.join(sorted(splits)) or 'none'}, not {(missing or known)[0]!r}")
        if subsets != known:
            args["subset_list"] = subsets
        return
    eval_split = args.get("eval_split") or meta.get("eval_split")
    train_split = args.get("train_split") or meta.get("train_split")
    shots = args.get("few_shot_num", meta.get("few_shot_num") or 0)
    readme_hint = "" if local is not None else (" (without a README `configs:` block, `datasets` names a split by a "
                                                "word of the file name: train, validation/dev/val, test)")
    if eval_split and eval_split not in splits:
        raise ConfigError(field_name, f"{name} evaluates the {eval_split!r} split, not found in {where} "
                          f"(it has: {', '.join(sorted(splits)) or 'none'}){readme_hint}")
    if shots and train_split and train_split not in splits:
        raise ConfigError(field_name, f"{name} takes its {shots}-shot examples from the {train_split!r} split, "
                          f"not found in {where} (it has: {', '.join(sorted(splits)) or 'none'}){readme_hint}: "
                          f"add it, or set dataset_args.{name}.few_shot_num to 0")


def task_kwargs(plan: EvalPlan, dataset: DatasetPlan, out_dir: Path, *, resume: bool) -> dict[str, Any]:
    """evalscope TaskConfig arguments for one dataset, every setting explicit.

    evalscope drops its default temperature as soon as any generation option is given, raises the
    batch size to 8 for API models when it is left unset, and retries 5 times 10 s apart inside an
    OpenAI client that retries twice more: all of it is pinned here.
    """
    config = plan.config
    generation = generation_options(config.generation_config)
    generation["retries"] = config.retries + 1  # evalscope counts attempts, not retries
    generation["retry_interval"] = config.retry_interval
    return {
        "model": config.model,
        "api_url": api_base(config.api_url),
        "api_key": config.api_key,
        "eval_type": "openai_api",
        "datasets": [dataset.name],
        "dataset_args": {dataset.name: dataset.args} if dataset.args else {},
        "limit": config.limit,
        "eval_batch_size": config.eval_batch_size,
        "generation_config": generation,
        "model_args": {"max_retries": 0},
        "work_dir": str(out_dir),
        "no_timestamp": True,
        "use_cache": str(out_dir) if resume else None,
        "seed": config.seed,
        "debug": config.debug,
        "ignore_errors": True,
        "enable_progress_tracker": False,
        "analysis_report": False,
        "repeats": config.repeats,
        **({"judge": judge_task_config(config.judge, retries=config.retries, retry_interval=config.retry_interval)}
           if config.judge is not None else {}),
    }


def worker_options(config: EvalConfig) -> dict[str, Any]:
    """What the worker does around evalscope (see _child._apply_options): the seed of each repeat when
    sampling (seed + r; generation_config.seed, else seed), the judge's bound and its proxy route."""
    options: dict[str, Any] = {}
    if config.repeats > 1 and float(config.generation_config.get("temperature") or 0) > 0:
        seed = config.generation_config.get("seed")
        options["repeat_seed"] = config.seed if seed is None else seed
    if config.judge is not None:
        options["judge_concurrency"] = config.judge.get("concurrency") or config.eval_batch_size
        options["judge_url"] = config.judge["api_url"]
    return options

