"""EvalConfig validation, the benchmark catalogue and the run plan: no process starts here."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalsvc import ConfigError, EvalConfig, list_benchmarks
from evalsvc.core.eval import plan_eval
from evalsvc.core.eval._plan import task_kwargs
from tests._evaldata import gsm8k_row, small_suite, write_jsonl, write_local_copy

BASE = {"model": "m", "api_url": "http://127.0.0.1:8000/v1", "datasets": ["gsm8k"]}


def _error(**changes: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        EvalConfig(**{**BASE, **changes})
    return info.value


def test_unknown_benchmark_names_the_field_and_suggests_the_nearest() -> None:
    err = _error(datasets=["gsm8k", "gsm8"])
    assert str(err) == "datasets: unknown benchmark 'gsm8': did you mean 'gsm8k'?"
    assert _error(datasets=["CEVAL"]).reason == "unknown benchmark 'CEVAL': did you mean 'ceval'?"
    assert "see `evalsvc benchmarks`" in _error(datasets=["zzqqxx"]).reason


@pytest.mark.parametrize(("name", "why"), [
    ("simple_qa", "LLM judge"), ("mmmu", "multimodal"), ("humaneval", "sandbox"),
])
def test_benchmarks_evalsvc_cannot_run_are_refused_with_the_reason(name: str, why: str) -> None:
    err = _error(datasets=[name])
    assert err.field == "datasets" and why in err.reason


@pytest.mark.parametrize(("changes", "field", "fragment"), [
    ({"limit": 0}, "limit", ">= 1"),
    ({"limit": -3}, "limit", ">= 1"),
    ({"limit": 1.5}, "limit", "(0, 1)"),
    ({"api_url": "localhost:8000"}, "api_url", "http(s) URL"),
    ({"eval_batch_size": 0}, "eval_batch_size", ">= 1"),
    ({"generation_config": {"temprature": 0}}, "generation_config.temprature", "unknown option"),
    ({"dataset_args": {"iquiz": {}}}, "dataset_args.iquiz", "not one of the requested datasets"),
    ({"dataset_args": {"gsm8k": {"subsets": ["main"]}}}, "dataset_args.gsm8k.subsets", "did you mean 'subset_list'"),
    ({"dataset_args": {"gsm8k": {"few_shot_num": -1}}}, "dataset_args.gsm8k.few_shot_num", ">= 0"),
    ({"datasets": ["ceval"], "dataset_args": {"ceval": {"subset_list": ["computer_netwrk"]}}},
     "dataset_args.ceval.subset_list", "did you mean 'computer_network'"),
    ({"max_workers": 0}, "max_workers", ">= 1"),
    ({"timeout": 0}, "timeout", "> 0"),
])
def test_bad_fields_raise_one_error_naming_the_field(changes: dict, field: str, fragment: str) -> None:
    err = _error(**changes)
    assert err.field == field and fragment in err.reason


def test_from_dict_accepts_the_spec_request_bodies() -> None:
    config = EvalConfig.from_dict({"model": "qwen-plus", "api_url": "https://dashscope.aliyuncs.com/compatible-mode/v1",
                                   "api_key": "your-api-key", "datasets": ["gsm8k", "iquiz"], "limit": 10,
                                   "generation_config": {"temperature": 0.0, "max_tokens": 2048}})
    assert config.limit == 10 and config.eval_batch_size == 1
    assert config.to_dict()["api_key"] == "***"
    EvalConfig.from_dict({"model": "qwen-plus", "api_url": "http://x/v1", "datasets": ["gsm8k", "iquiz", "ceval"],
                          "limit": 50, "eval_batch_size": 4})


def test_list_benchmarks_describes_the_text_catalogue() -> None:
    entries = {e["name"]: e for e in list_benchmarks()}
    for name in ("gsm8k", "iquiz", "ceval", "mmlu", "arc"):
        assert entries[name]["supported"] and entries[name]["metric"] == "accuracy"
        assert len(entries[name]["description"]) > 40
    assert len(entries["ceval"]["subsets"]) == 52 and entries["iquiz"]["subsets"] == ["IQ", "EQ"]
    assert entries["gsm8k"]["few_shot_num"] == 4 and entries["gsm8k"]["train_split"] == "train"
    assert "mmmu" not in entries
    assert entries["simple_qa"]["requires_judge"] and not entries["gsm8k"]["requires_judge"]  # runs with a judge
    everything = {e["name"]: e for e in list_benchmarks(include_unsupported=True)}
    assert not everything["mmmu"]["supported"] and "multimodal" in everything["mmmu"]["unsupported_reason"]


def test_config_and_catalogue_never_import_evalscope() -> None:
    code = ("import sys, evalsvc; from evalsvc import EvalConfig, list_benchmarks; "
            "EvalConfig(model='m', api_url='http://h/v1', datasets=['gsm8k', 'ceval']); list_benchmarks(); "
            "import evalsvc.core.eval; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('evalscope', 'datasets', 'aiohttp')))")
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert time.monotonic() - t0 < 20


# --- the plan: local copies, resume directory, explicit evalscope settings -------------------------------


def test_local_copy_with_some_subsets_evaluates_those(tmp_path: Path) -> None:
    suite = small_suite(tmp_path)
    plan = plan_eval(EvalConfig(**{**BASE, "datasets": ["gsm8k", "iquiz", "ceval"], "dataset_dir": str(tmp_path)}))
    by_name = {d.name: d for d in plan.datasets}
    assert by_name["ceval"].args == {"local_path": str(tmp_path / "ceval"),
                                     "subset_list": ["computer_network", "operating_system"]}
    assert by_name["ceval"].notes == ["the local copy holds 2 of its 52 subsets; evaluating those"]
    assert by_name["iquiz"].args == {"local_path": str(tmp_path / "iquiz")}  # both subsets: defaults kept
    assert by_name["gsm8k"].hf_cache and by_name["gsm8k"].hf_cache != by_name["iquiz"].hf_cache
    assert suite.count("ceval") == 5


def test_missing_local_folder_names_dataset_dir(tmp_path: Path) -> None:
    write_local_copy(tmp_path / "gsm8k", {"main": {"test": [gsm8k_row("[A]", "1+1?", 2)], "train": []}})
    with pytest.raises(ConfigError) as info:
        plan_eval(EvalConfig(**{**BASE, "datasets": ["gsm8k", "iquiz"], "dataset_dir": str(tmp_path)}))
    assert info.value.field == "dataset_dir"
    assert "has no folder for 'iquiz'" in info.value.reason and "found: gsm8k" in info.value.reason


def test_local_copy_without_train_split_asks_for_zero_shot(tmp_path: Path) -> None:
    write_local_copy(tmp_path / "gsm8k", {"main": {"test": [gsm8k_row("[A]", "1+1?", 2)]}})
    with pytest.raises(ConfigError, match=r"no 'train' split for the 4-shot examples.*few_shot_num to 0"):
        plan_eval(EvalConfig(**{**BASE, "dataset_dir": str(tmp_path)}))
    plan = plan_eval(EvalConfig(**{**BASE, "dataset_dir": str(tmp_path),
                                   "dataset_args": {"gsm8k": {"few_shot_num": 0}}}))
    assert plan.datasets[0].args["few_shot_num"] == 0


def test_readme_less_folder_loads_as_the_default_subset(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "g" / "test.jsonl", [gsm8k_row("[A]", "1+1?", 2)])
    plan = plan_eval(EvalConfig(**{**BASE, "dataset_args": {"gsm8k": {"local_path": str(tmp_path / "g")}}}))
    assert plan.datasets[0].args["subset_list"] == ["default"]
    with pytest.raises(ConfigError) as info:
        plan_eval(EvalConfig(**{**BASE, "dataset_args": {"gsm8k": {"local_path": str(tmp_path / "nope")}}}))
    assert info.value.field == "dataset_args.gsm8k.local_path"


def test_local_cache_folder_follows_the_files(tmp_path: Path) -> None:
    small_suite(tmp_path)
    config = EvalConfig(**{**BASE, "dataset_dir": str(tmp_path)})
    before = plan_eval(config).datasets[0].hf_cache
    assert plan_eval(config).datasets[0].hf_cache == before
    time.sleep(0.01)
    write_jsonl(tmp_path / "gsm8k" / "main" / "test.jsonl", [gsm8k_row("[Z]", "2+2?", 4)])
    assert plan_eval(config).datasets[0].hf_cache != before


def test_use_cache_must_be_an_evalsvc_output_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        plan_eval(EvalConfig(**{**BASE, "use_cache": str(tmp_path)}))
    assert info.value.field == "use_cache" and "config.json" in info.value.reason
    (tmp_path / "config.json").write_text(json.dumps({}))
    assert plan_eval(EvalConfig(**{**BASE, "use_cache": str(tmp_path)})).resume_dir == tmp_path.resolve()


def test_evalscope_gets_every_setting_explicitly(tmp_path: Path) -> None:
    config = EvalConfig(**{**BASE, "api_url": "http://h:1/v1/chat/completions/", "api_key": "k",
                           "generation_config": {"max_tokens": 64, "stop": "END"}, "retries": 3,
                           "retry_interval": 0.5, "limit": 7})
    plan = plan_eval(config)
    kwargs = task_kwargs(plan, plan.datasets[0], tmp_path / "gsm8k", resume=False)
    # evalscope drops temperature 0 when any generation option is given: it is always sent.
    assert kwargs["generation_config"] == {"temperature": 0.0, "max_tokens": 64, "stop_seqs": ["END"],
                                           "retries": 4, "retry_interval": 0.5}
    assert kwargs["eval_batch_size"] == 1  # evalscope would raise an unset batch size to 8
    assert kwargs["model_args"] == {"max_retries": 0}  # one retry layer, not two
    assert kwargs["api_url"] == "http://h:1/v1"
    assert kwargs["ignore_errors"] is True and kwargs["no_timestamp"] is True and kwargs["use_cache"] is None
    assert kwargs["work_dir"] == str(tmp_path / "gsm8k") and kwargs["limit"] == 7
    assert task_kwargs(plan, plan.datasets[0], tmp_path / "gsm8k", resume=True)["use_cache"] == str(tmp_path / "gsm8k")


# --- every field and generation option is type-checked before any work ---------------------------------


@pytest.mark.parametrize(("changes", "field", "fragment"), [
    ({"generation_config": {"stop": 5}}, "generation_config.stop", "a string or a list of strings"),
    ({"generation_config": {"stop": ["END", 1]}}, "generation_config.stop", "a string or a list of strings"),
    ({"generation_config": {"max_tokens": 10.5}}, "generation_config.max_tokens", "an integer"),
    ({"generation_config": {"seed": "x"}}, "generation_config.seed", "an integer"),
    ({"generation_config": {"top_k": 1.5}}, "generation_config.top_k", "an integer"),
    ({"generation_config": {"presence_penalty": "x"}}, "generation_config.presence_penalty", "a number"),
    ({"generation_config": {"frequency_penalty": 3}}, "generation_config.frequency_penalty", "<= 2"),
    ({"generation_config": {"top_p": "0.5"}}, "generation_config.top_p", "a number"),
    ({"generation_config": {"temperature": "0"}}, "generation_config.temperature", "a number"),
    ({"generation_config": {"timeout": float("inf")}}, "generation_config.timeout", "finite"),
    ({"generation_config": {"extra_body": [1]}}, "generation_config.extra_body", "an object"),
    ({"generation_config": {"extra_body": {"x": object()}}}, "generation_config.extra_body", "JSON"),
    ({"use_cache": 5}, "use_cache", "a string"),
    ({"eval_batch_size": 2.5}, "eval_batch_size", "an integer"),
    ({"max_workers": 2.5}, "max_workers", "an integer"),
    ({"preflight": "no"}, "preflight", "true or false"),
    ({"debug": 1}, "debug", "true or false"),
    ({"retries": "2"}, "retries", "an integer"),
    ({"retry_interval": float("inf")}, "retry_interval", "finite"),
    ({"timeout": float("inf")}, "timeout", "finite"),
    ({"limit": 10**10}, "limit", "<= 1000000000"),
    ({"limit": True}, "limit", "got True"),
    ({"work_dir": 3}, "work_dir", "a string"),
])
def test_wrong_types_are_config_errors_before_any_work(changes: dict, field: str, fragment: str) -> None:
    err = _error(**changes)
    assert err.field == field and fragment in err.reason, err


def test_generation_options_are_normalised() -> None:
    config = EvalConfig(**{**BASE, "generation_config": {"max_tokens": 64.0, "temperature": 1, "seed": 7,
                                                         "stop": ["A", "B"], "presence_penalty": -1,
                                                         "extra_body": {"chat_template_kwargs": {"x": True}}},
                           "datasets": ("gsm8k",), "limit": 5.0})
    gen = config.generation_config
    assert gen["max_tokens"] == 64 and type(gen["max_tokens"]) is int
    assert gen["temperature"] == 1.0 and gen["presence_penalty"] == -1.0 and gen["seed"] == 7
    assert config.datasets == ["gsm8k"] and config.limit == 5 and type(config.limit) is int
    assert EvalConfig(**{**BASE, "datasets": "gsm8k"}).datasets == ["gsm8k"]


def test_cli_bad_generation_option_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "evalsvc", "eval", "--model", "m", "--api-url", "http://127.0.0.1:9/v1",
                          "-d", "gsm8k", "--no-preflight", "--work-dir", str(tmp_path / "out"),
                          "--generation-config", '{"stop": 5}'], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        "ConfigError: generation_config.stop: expected a string or a list of strings, got 5"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("url", ["http://user:PASSW0RDX@127.0.0.1:8000/v1", "https://PASSW0RDX@example.com/v1",
                                 "http://127.0.0.1:8000/v1?api_key=PASSW0RDX", "http://h/v1?api-version=1#PASSW0RDX"])
def test_credentials_or_a_query_in_api_url_are_refused_without_echoing_them(url: str) -> None:
    err = _error(api_url=url)
    assert err.field == "api_url" and "api_key" in err.reason
    assert "PASSW0RDX" not in str(err)


def test_api_url_with_a_query_would_reach_the_wrong_path() -> None:
    # Why a query is refused: the OpenAI client evalscope uses appends the path after the query.
    import openai
    from openai._base_client import FinalRequestOptions

    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1?api-version=1", api_key="x", max_retries=0)
    request = client._build_request(FinalRequestOptions(method="post", url="/chat/completions", json_data={}))
    assert request.url.path == "/v1/" and "chat/completions" in str(request.url.query)


def test_dataset_args_without_subset_list_are_checked_without_crashing() -> None:
    # a split name given alone used to reach the subset check with no subsets (UnboundLocalError, a 500)
    config = EvalConfig(**{**BASE, "datasets": ["ceval"], "dataset_args": {"ceval": {"eval_split": "val",
                                                                                      "few_shot_num": 0}}})
    assert config.dataset_args["ceval"] == {"eval_split": "val", "few_shot_num": 0}
    assert _error(datasets=["ceval"], dataset_args={"ceval": {"eval_split": "../x"}}).field == \
        "dataset_args.ceval.eval_split"


def test_a_resume_with_other_answer_settings_is_refused_before_any_work(tmp_path: Path) -> None:
    earlier = EvalConfig(**{**BASE, "repeats": 2, "generation_config": {"temperature": 0.5, "timeout": 30}})
    (tmp_path / "config.json").write_text(json.dumps({"config": earlier.to_dict()}))
    same = earlier.replace(use_cache=str(tmp_path))
    assert plan_eval(same).resume_dir == tmp_path.resolve()
    # transport settings do not change the answers: evalscope resumes across them, so does evalsvc
    assert plan_eval(same.replace(generation_config={"temperature": 0.5, "timeout": 99, "stream": True},
                                  retries=5, eval_batch_size=8)).resume_dir == tmp_path.resolve()
    for change, shown in (({"repeats": 1}, 'repeats=2, this one has repeats=1'),
                          ({"generation_config": {"temperature": 0.0}}, "generation_config="),
                          ({"seed": 7}, "seed=42")):
        with pytest.raises(ConfigError) as info:
            plan_eval(same.replace(**change))
        assert info.value.field == "use_cache" and shown in info.value.reason


def test_repeats_ask_evalscope_for_pass_at_k_with_the_mean_as_headline() -> None:
    plan = plan_eval(EvalConfig(**{**BASE, "repeats": 4}))
    assert plan.datasets[0].args == {"aggregation": "mean_and_pass_at_k",
                                     "primary_metric": {"name": "accuracy", "aggregation": "mean"}}
    # an aggregation chosen by the user is kept, and its headline named (evalscope would fail without it)
    plan = plan_eval(EvalConfig(**{**BASE, "dataset_args": {"gsm8k": {"aggregation": "mean_and_vote_at_k"}}}))
    assert plan.datasets[0].args == {"aggregation": "mean_and_vote_at_k",
                                     "primary_metric": {"name": "accuracy", "aggregation": "mean"}}
    assert plan_eval(EvalConfig(**BASE)).datasets[0].args == {}
