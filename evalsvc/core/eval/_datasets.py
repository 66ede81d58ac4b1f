"""Local copies of benchmarks: `prepare` downloads them into the layout evalsvc loads offline, `check`
says offline what a folder holds and what is missing.

A copy is what evalscope's adapter loads (docs/datasets.md): a folder per benchmark with a README whose
`configs:` block names each config's split files. `prepare` fetches a snapshot of the benchmark's dataset
repository from the hub (ModelScope, as evalscope does by default, or Hugging Face), loads each config
and split the adapter needs with `datasets.load_dataset`, as evalscope does, and writes them as JSON
Lines with that README. A folder laid out like a hub (`<folder>/<dataset id>/`, each a repository snapshot)
can stand in for the hub: a mirror carried in, or a test's stand-in.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DatasetError
from ._catalogue import (adapter_facts, benchmark_index, benchmark_meta, check_benchmark, load_layout,
                         unsupported_reason)
from ._extra import require_eval

HUBS = ("modelscope", "huggingface")


def needed_files(name: str) -> dict[str, list[str]]:
    """{config: [splits]} a local copy of `name` must hold for evalsvc to run it with its defaults."""
    meta = benchmark_meta(name)
    layout = load_layout(name)
    eval_split = meta.get("eval_split") or "test"
    splits = [eval_split]
    if (meta.get("few_shot_num") or 0) > 0 and meta.get("train_split") and meta["train_split"] != eval_split:
        splits.append(str(meta["train_split"]))
    subsets = [str(s) for s in meta.get("subset_list") or []] or ["default"]
    if layout.kind == "split_by_field":
        return {layout.default_subset: splits}
    if layout.kind == "split_as_subset":
        return {layout.default_subset: subsets}
    return {subset: list(splits) for subset in subsets}


def _hub_id(name: str, hub: str) -> str:
    meta = benchmark_meta(name)
    if hub == "huggingface":
        hf_id = adapter_facts(name).hf_dataset_id
        if not hf_id:
            raise ConfigError("hub", f"{name} names no Hugging Face dataset; prepare it from modelscope")
        return hf_id
    dataset_id = meta.get("dataset_id")
    if not dataset_id:
        raise ConfigError("datasets", f"{name} names no dataset to download")
    return str(dataset_id)


def _snapshot(hub: str, dataset_id: str) -> Path:
    """A local snapshot of the dataset repository `dataset_id` (downloaded, or in a hub-like folder).

    Raises:
        DatasetError: it cannot be fetched (the hub's reason, in one line).
    """
    if hub not in HUBS:  # a folder laid out like a hub
        path = Path(hub) / dataset_id
        if not path.is_dir():
            raise DatasetError(f"the hub folder {hub} has no {dataset_id}/ (looked for {path})")
        return path
    try:
        if hub == "huggingface":
            from huggingface_hub import snapshot_download as hf_download

            return Path(str(hf_download(dataset_id, repo_type="dataset")))
        from modelscope.hub.snapshot_download import snapshot_download as ms_download

        return Path(ms_download(repo_id=dataset_id, repo_type="dataset"))
    except Exception as exc:  # any hub library failure: one line, naming what could not be fetched
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise DatasetError(f"cannot download {dataset_id} from {hub}: {type(exc).__name__}: {first}") from None


def _write_split(snapshot: Path, config: str, split: str, dest: Path) -> int:
    """Load one config/split of a snapshot as evalscope would and write it as JSON Lines; return its rows."""
    import datasets

    try:
        data = datasets.load_dataset(str(snapshot), name=None if config == "default" else config, split=split)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise DatasetError(f"cannot load config {config!r} split {split!r} of {snapshot}: "
                           f"{type(exc).__name__}: {first}") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    data.to_json(str(dest), lines=True, force_ascii=False)
    return len(data)


def _readme(name: str, files: dict[str, list[str]]) -> str:
    lines = ["---", "configs:"]
    for config, splits in files.items():
        lines += [f"- config_name: {_yaml_str(config)}", "  data_files:"]
        for split in splits:
            lines += [f"  - split: {_yaml_str(split)}", f"    path: {_yaml_str(f'{_folder(config)}/{split}.jsonl')}"]
    lines += ["---", "", f"Local copy of {name} for evalsvc (`evalsvc datasets prepare`).", ""]
    return "\n".join(lines)


def _yaml_str(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML string


def _folder(config: str) -> str:
    return config.replace("/", "_").replace("\\", "_")


def prepare_datasets(names: list[str], to: str | os.PathLike[str], *, hub: str = "modelscope",
                     on_progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Download benchmarks into `to/<name>/` in the local layout, ready for `dataset_dir`.

    Each benchmark is written aside and renamed into place, replacing an earlier copy only once the new
    one is complete.

    Args:
        names: benchmark names from the catalogue.
        to: the folder to fill (created if needed): what `dataset_dir` will point at.
        hub: "modelscope" (evalscope's default source), "huggingface", or a folder laid out like a hub
            (`<folder>/<dataset id>/`, each a snapshot of the dataset repository).
        on_progress: called with a line per file written.

    Returns:
        One {"name", "path", "source", "files": {config: {split: rows}}} per benchmark.

    Raises:
        ConfigError: an unknown benchmark, an unusable `to` or `hub`.
        DatasetError: a download or a load failed (what was complete before is kept).
        MissingExtra: the eval extra (datasets, evalscope's catalogue) is not installed.
    """
    require_eval()
    if not names:
        raise ConfigError("datasets", "name at least one benchmark")
    for name in names:
        check_benchmark(name)
    if hub not in HUBS and not Path(hub).is_dir():
        raise ConfigError("hub", f"must be {' or '.join(HUBS)}, or a folder laid out like a hub, got {hub!r}")
    root = Path(to).expanduser().resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("to", f"cannot create {root}: {exc.strerror or exc}") from None
    done = []
    for name in names:
        dataset_id = _hub_id(name, hub)
        snapshot = _snapshot(hub, dataset_id)
        files = needed_files(name)
        building = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
        try:
            counts: dict[str, dict[str, int]] = {}
            for config, splits in files.items():
                for split in splits:
                    rows = _write_split(snapshot, config, split, building / _folder(config) / f"{split}.jsonl")
                    counts.setdefault(config, {})[split] = rows
                    if on_progress is not None:
                        on_progress(f"{name}: {config}/{split}: {rows} rows")
            (building / "README.md").write_text(_readme(name, files), encoding="utf-8")
            dest = root / name
            if dest.exists():
                old = root / f".{name}.old"
                shutil.rmtree(old, ignore_errors=True)
                os.rename(dest, old)
                os.rename(building, dest)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(building, dest)
        finally:
            shutil.rmtree(building, ignore_errors=True)
        done.append({"name": name, "path": str(root / name), "source": f"{hub}:{dataset_id}", "files": counts})
    return done


def check_datasets(folder: str | os.PathLike[str], names: list[str] | None = None) -> list[dict[str, Any]]:
    """What a `dataset_dir` folder holds, offline: one entry per benchmark folder in it (or per name asked).

    Each entry: {"name", "status": "ok" | "missing" | "unusable" | "unknown", "problem": str | None,
    "subsets": the subsets a run evaluates (None when the rows' field decides, as for mmlu)}.
    "ok" means evalsvc accepts the copy (the same checks as a run's plan);
    "unusable" gives the reason (the layout, a missing split, a benchmark evalsvc cannot run).

    Raises:
        ConfigError: `folder` is not a directory.
        MissingExtra: the eval extra is not installed.
    """
    from ._plan import _resolve_local

    require_eval()
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise ConfigError("dataset_dir", f"is not a directory: {root}")
    index = benchmark_index() or {}
    present = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    out = []
    for name in names or present:
        entry: dict[str, Any] = {"name": name, "status": "ok", "problem": None, "subsets": None}
        out.append(entry)
        if name not in index:
            entry.update(status="unknown", problem="not a benchmark in the catalogue (`evalsvc benchmarks`)")
            continue
        if not (root / name).is_dir():
            entry.update(status="missing", problem=f"no folder {root / name}")
            continue
        meta = benchmark_meta(name)
        reason = unsupported_reason(meta, name)
        if reason:
            entry.update(status="unusable", problem=f"{name} {reason}")
            continue
        args: dict[str, Any] = {}
        try:
            _resolve_local(name, root / name, args, meta, [], field_name="dataset_dir")
        except ConfigError as exc:
            entry.update(status="unusable", problem=exc.reason)
            continue
        if load_layout(name).kind == "split_by_field":
            entry["subsets"] = None  # whatever the rows' subset field says: known only when loaded
        else:
            entry["subsets"] = list(args.get("subset_list") or meta.get("subset_list") or [])
    return out
