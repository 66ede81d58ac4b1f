"""Local copies of benchmarks whose adapter loads one dataset config and splits it into subsets.

mmlu, mmlu_pro, math_500 and ~50 others load a single config (`default_subset`) and make subsets of its
rows by a field (evalscope's `reformat_subset`); a few take the config's splits as subsets. Their local
copies hold that one config, not one config per subset. Scores follow from the answers table in
tests/_evaldata.py (split_by_field_suite), run offline against the simulated endpoint.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalsvc import ConfigError, EvalConfig, run_eval
from evalsvc.core.eval._catalogue import benchmark_index, load_layout
from evalsvc.core.eval._plan import plan_eval
from tests._evaldata import Suite, split_by_field_suite, write_jsonl, write_local_copy
from tests._servers import MockHandle, start_mock


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return split_by_field_suite(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="module")
def mock(suite: Suite) -> Iterator[MockHandle]:
    with start_mock(answers=suite.answers, ttft_ms=0, itl_ms=0) as server:
        yield server


def test_the_catalogue_knows_which_adapters_load_one_config() -> None:
    assert load_layout("mmlu").kind == "split_by_field" and load_layout("mmlu").default_subset == "all"
    assert load_layout("mmlu_pro").kind == "split_by_field" and load_layout("mmlu_pro").default_subset == "default"
    assert load_layout("math_500").kind == "split_by_field"
    assert load_layout("pope").kind == "split_as_subset" and load_layout("pope").default_subset == "Full"
    assert load_layout("gsm8k").kind == "subsets" and load_layout("ceval").kind == "subsets"
    one_config = [n for n in benchmark_index() or {} if load_layout(n).kind != "subsets"]
    assert len(one_config) >= 60  # 52 split by a field (acebench also by split) and 17 by split, in evalscope 1.14


def test_mmlu_mmlu_pro_and_math_500_score_offline_from_local_copies(mock: MockHandle, suite: Suite,
                                                                    tmp_path: Path) -> None:
    config = EvalConfig(model="mock-model", api_url=mock.base_url, datasets=["mmlu", "mmlu_pro", "math_500"],
                        dataset_dir=str(suite.dataset_dir), work_dir=str(tmp_path), retry_interval=0,
                        eval_batch_size=2, report=False)
    result = run_eval(config)
    assert result.status == "completed", result.error
    for name, score in {"mmlu": 0.8, "mmlu_pro": 0.75, "math_500": 0.5}.items():
        d = result[name]
        assert d.score == pytest.approx(score) == pytest.approx(suite.expected_score(name))
        assert (d.scored, d.errored) == (suite.count(name), 0)
        # the subsets are those of the rows' field, each scored as the answers table implies
        assert {s: round(v["score"], 4) for s, v in d.subsets.items()} == {
            s: round(suite.expected_score(name, s), 4) for s in {i.subset for i in suite.items[name]}}


def _copy(suite: Suite, name: str, dest: Path) -> Path:
    shutil.copytree(suite.dataset_dir / name, dest / name)
    return dest


def _plan(name: str, data: Path, **args: object) -> dict[str, object]:
    config = EvalConfig(model="m", api_url="http://127.0.0.1:9/v1", datasets=[name], dataset_dir=str(data),
                        **({"dataset_args": {name: args}} if args else {}))
    return plan_eval(config).datasets[0].args


def test_a_single_config_under_another_name_is_used(tmp_path: Path) -> None:
    rows = [{"question": "q", "subject": "virology", "choices": ["a", "b"], "answer": 0}]
    write_local_copy(tmp_path / "mmlu", {"main": {"test": rows, "dev": rows}})
    assert _plan("mmlu", tmp_path)["default_subset"] == "main"


def test_wrong_layouts_are_refused_naming_what_is_missing(suite: Suite, tmp_path: Path) -> None:
    rows = [{"question": "q", "subject": "virology", "choices": ["a", "b"], "answer": 0}]
    write_local_copy(tmp_path / "a" / "mmlu", {"virology": {"test": rows, "dev": rows},
                                              "astronomy": {"test": rows, "dev": rows}})
    with pytest.raises(ConfigError, match=r"dataset_dir: mmlu loads one dataset config, 'all', and splits it into "
                       r"subsets by a field of its rows; the local copy at .* has configs virology, astronomy"):
        _plan("mmlu", tmp_path / "a")
    write_local_copy(tmp_path / "b" / "mmlu", {"all": {"test": rows}})
    with pytest.raises(ConfigError, match=r"takes its 5-shot examples from the 'dev' split, "
                       r"not found in config 'all' .* "
                       r"\(it has: test\): add it, or set dataset_args.mmlu.few_shot_num to 0"):
        _plan("mmlu", tmp_path / "b")
    assert _plan("mmlu", tmp_path / "b", few_shot_num=0)["local_path"] == str(tmp_path / "b" / "mmlu")
    write_jsonl(tmp_path / "c" / "math_500" / "train.jsonl", [{"problem": "p"}])
    with pytest.raises(ConfigError, match=r"math_500 evaluates the 'test' split, not found in the data files at .* "
                       r"\(it has: train\) \(without a README"):
        _plan("math_500", tmp_path / "c")
    # A README-less folder loads as `datasets`' config 'default': mmlu (default_subset 'all') is pointed at it.
    write_jsonl(tmp_path / "d" / "mmlu" / "test.jsonl", rows)
    assert _plan("mmlu", tmp_path / "d", few_shot_num=0)["default_subset"] == "default"
    assert "default_subset" not in _plan("mmlu_pro", _copy(suite, "mmlu_pro", tmp_path / "e"))


def test_dataset_args_without_subset_list_are_accepted_for_multi_subset_benchmarks() -> None:
    # the field's own help example; it used to fail with UnboundLocalError (a traceback for user input)
    config = EvalConfig(model="m", api_url="http://127.0.0.1:9/v1", datasets=["ceval"],
                        dataset_args={"ceval": {"few_shot_num": 0, "eval_split": "val"}})
    assert config.dataset_args["ceval"] == {"few_shot_num": 0, "eval_split": "val"}
    with pytest.raises(ConfigError, match=r"dataset_args.ceval.subset_list: unknown subset 'logics'"):
        EvalConfig(model="m", api_url="http://127.0.0.1:9/v1", datasets=["ceval"],
                   dataset_args={"ceval": {"subset_list": ["logics"], "few_shot_num": 0}})


def test_errored_samples_are_listed_by_id_and_the_macro_score_is_reported(suite: Suite, tmp_path: Path) -> None:
    with start_mock(answers=suite.answers, ttft_ms=0, itl_ms=0, error_500=0.5) as mock:
        result = run_eval(EvalConfig(model="mock-model", api_url=mock.base_url, datasets=["mmlu"],
                                     dataset_dir=str(suite.dataset_dir), work_dir=str(tmp_path), retries=0,
                                     retry_interval=0, preflight=False, report=False))
        faults = mock.stats()["faults"]["error_500"]
    d = result["mmlu"]
    assert d.errored == faults == len(d.errored_samples) > 0
    assert all(e["error"] == "InternalServerError: Error code: 500 - mock: injected internal server error"
               for e in d.errored_samples)
    # the ids are exactly the samples missing from the predictions
    for subset, count in {"astronomy": 3, "virology": 2}.items():
        path = Path(d.output_dir or "") / "predictions" / "mock-model" / f"mmlu_{subset}.jsonl"
        predicted = {json.loads(line)["index"] for line in path.read_text().splitlines() if line.strip()}
        errored = {e["id"] for e in d.errored_samples if e["subset"] == subset}
        assert predicted | errored == set(range(count)) and not predicted & errored
    assert d.to_dict()["errored_samples"] == d.errored_samples


def test_macro_score_beside_the_micro_score(mock: MockHandle, suite: Suite, tmp_path: Path) -> None:
    result = run_eval(EvalConfig(model="mock-model", api_url=mock.base_url, datasets=["mmlu"], report=False,
                                 dataset_dir=str(suite.dataset_dir), work_dir=str(tmp_path), retry_interval=0))
    d = result["mmlu"].to_dict()
    assert d["score"] == pytest.approx(0.8)  # 4 of 5 samples
    assert d["macro_score"] == pytest.approx((2 / 3 + 1.0) / 2, abs=1e-4)  # the mean of the two subjects' scores
