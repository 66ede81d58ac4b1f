"""`evalsvc datasets prepare` fills a folder in the local layout from a hub, and `evalsvc datasets check`
says offline what is there. The hub here is a local stand-in: a folder laid out like one
(`<hub>/<dataset id>/`, each a repository snapshot with parquet files), loaded by the same
`datasets.load_dataset` calls as a downloaded snapshot. No network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evalsvc import EvalConfig, run_eval
from evalsvc.core.eval._catalogue import benchmark_meta
from evalsvc.core.eval._datasets import check_datasets, needed_files
from tests._evaldata import Suite, small_suite, split_by_field_suite
from tests._servers import start_mock


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _repo(root: Path, configs: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    """A dataset repository snapshot as hubs serve them: a README `configs:` block over parquet shards,
    plus configs the benchmark does not use."""
    import datasets

    lines = ["---", "configs:"]
    for config, splits in configs.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        for split, rows in splits.items():
            path = f"{config}/{split}-00000-of-00001.parquet"
            (root / config).mkdir(parents=True, exist_ok=True)
            datasets.Dataset.from_list(rows).to_parquet(str(root / path))
            lines += [f"  - split: {split}", f"    path: {path}"]
    (root / "README.md").write_text("\n".join([*lines, "---", "", "A stand-in hub repository.", ""]), encoding="utf-8")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Suite, Suite]:
    source = tmp_path_factory.mktemp("suites")
    small, by_field = small_suite(source / "small"), split_by_field_suite(source / "by_field")
    hub = tmp_path_factory.mktemp("hub")
    g = source / "small" / "gsm8k" / "main"
    _repo(hub / "AI-ModelScope" / "gsm8k", {
        "main": {"train": _rows(g / "train.jsonl"), "test": _rows(g / "test.jsonl")},
        "socratic": {"test": _rows(g / "test.jsonl")[:1]}})
    m = source / "by_field" / "mmlu" / "all"
    one = _rows(m / "test.jsonl")[:1]
    _repo(hub / "cais" / "mmlu", {"all": {"test": _rows(m / "test.jsonl"), "dev": _rows(m / "dev.jsonl")},
                                  "abstract_algebra": {"test": one, "dev": one}})
    return hub, small, by_field


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalsvc", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})


def test_the_files_each_layout_needs() -> None:
    assert needed_files("gsm8k") == {"main": ["test", "train"]}
    assert needed_files("mmlu") == {"all": ["test", "dev"]}  # one config, split into subsets by its rows
    assert needed_files("math_500") == {"default": ["test"]}
    # pope takes the splits of its one config, `Full`, as its subsets
    assert needed_files("pope") == {"Full": list(benchmark_meta("pope")["subset_list"])}


def test_prepare_then_check_then_evaluate_offline(hub: tuple[Path, Suite, Suite], tmp_path: Path) -> None:
    hub_dir, small, by_field = hub
    to = tmp_path / "copies"
    out = _cli("datasets", "prepare", "gsm8k", "mmlu", "--to", str(to), "--hub", str(hub_dir))
    assert out.returncode == 0, out.stderr
    assert f"gsm8k: 9 rows in 1 config(s) -> {to / 'gsm8k'} (from {hub_dir}:AI-ModelScope/gsm8k)" in out.stdout
    assert "mmlu: 15 rows in 1 config(s)" in out.stdout
    assert "gsm8k: main/train: 4 rows" in out.stderr
    # only what the adapters load: gsm8k's `main` (not `socratic`), mmlu's `all` (not its per-subject configs)
    assert sorted(p.name for p in (to / "gsm8k").iterdir()) == ["README.md", "main"]
    assert sorted(p.name for p in (to / "mmlu" / "all").iterdir()) == ["dev.jsonl", "test.jsonl"]

    checked = _cli("datasets", "check", str(to))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.splitlines() == ["ok        gsm8k (1 subset)", "ok        mmlu (subsets from its rows)"]
    missing = _cli("datasets", "check", str(to), "gsm8k", "ceval", "nosuch")
    assert missing.returncode == 1
    assert f"missing   ceval: no folder {to / 'ceval'}" in missing.stdout
    assert "unknown   nosuch: not a benchmark in the catalogue" in missing.stdout

    with start_mock(answers=small.answers + by_field.answers, ttft_ms=0, itl_ms=0) as mock:
        result = run_eval(EvalConfig(model="mock-model", api_url=mock.base_url, datasets=["gsm8k", "mmlu"],
                                     dataset_dir=str(to), work_dir=str(tmp_path / "out"), report=False,
                                     retry_interval=0))
    assert result.status == "completed", result.error
    assert result["gsm8k"].score == pytest.approx(small.expected_score("gsm8k"))  # 0.8
    assert result["mmlu"].score == pytest.approx(by_field.expected_score("mmlu"))  # 0.8


def test_check_reports_an_unusable_copy_and_prepare_refuses_bad_input(tmp_path: Path) -> None:
    (tmp_path / "copies" / "mmlu").mkdir(parents=True)
    (tmp_path / "copies" / "mmlu" / "notes.txt").write_text("x")
    [entry] = check_datasets(tmp_path / "copies")
    assert entry["status"] == "unusable" and "mmlu evaluates the 'test' split, not found" in entry["problem"]
    out = _cli("datasets", "prepare", "gsm8k", "--to", str(tmp_path / "x"), "--hub", str(tmp_path / "nohub"))
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"ConfigError: hub: must be modelscope or huggingface, or a folder laid out like a hub, got "
        f"'{tmp_path / 'nohub'}'"]
    out = _cli("datasets", "prepare", "gsm8k", "--to", str(tmp_path / "x"), "--hub", str(tmp_path / "copies"))
    assert out.returncode == 2
    assert out.stderr.strip() == (f"DatasetError: the hub folder {tmp_path / 'copies'} has no AI-ModelScope/gsm8k/ "
                                  f"(looked for {tmp_path / 'copies' / 'AI-ModelScope' / 'gsm8k'})")
