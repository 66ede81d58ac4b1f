"""LLM-as-judge: a judge-scored benchmark runs end to end with `evalsvc mock` as the judge.

The evaluated model and the judge are two simulated endpoints: the model's answers and the judge's
verdicts come from their answer tables (tests/_evaldata.simple_qa_suite), so every score is known.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalsvc import ConfigError, EvalConfig, EvalResult, run_eval
from evalsvc.core.eval._catalogue import list_benchmarks
from tests._evaldata import JudgeSuite, simple_qa_suite
from tests._servers import start_mock

JUDGE_KEY = "sk-judge-SECRET-90210"
MODEL_KEY = "sk-model-SECRET-31337"
FAST = {"ttft_ms": 0, "itl_ms": 0}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> JudgeSuite:
    return simple_qa_suite(tmp_path_factory.mktemp("judge-data"), grades="AABCAB")


@pytest.fixture(scope="module")
def judged(suite: JudgeSuite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EvalResult, list, dict]]:
    events: list[dict[str, Any]] = []
    with start_mock(answers=suite.answers, **FAST) as model, \
            start_mock(answers=suite.verdicts, ttft_ms=100, itl_ms=0) as judge:
        config = EvalConfig(model="mock-model", api_url=model.base_url, api_key=MODEL_KEY, datasets=["simple_qa"],
                            dataset_dir=str(suite.dataset_dir), work_dir=str(tmp_path_factory.mktemp("out")),
                            retry_interval=0, report=False, eval_batch_size=4,
                            judge={"api_url": judge.base_url, "model": "judge-model", "api_key": JUDGE_KEY,
                                   "concurrency": 2})
        result = run_eval(config, progress=events.append)
        yield result, events, {"model": model.stats(), "judge": judge.stats()}


def test_the_judges_verdicts_make_the_score(judged: tuple[EvalResult, list, dict], suite: JudgeSuite) -> None:
    result, _, stats = judged
    assert result.status == "completed", result.error
    d = result["simple_qa"]
    assert d.metric == "is_correct"
    assert d.score == pytest.approx(suite.share("A"))  # 3 of 6
    assert d.metrics == {"is_correct": pytest.approx(suite.share("A"), abs=1e-4),  # evalscope rounds to 4 places
                         "is_incorrect": pytest.approx(suite.share("B"), abs=1e-4),
                         "is_not_attempted": pytest.approx(suite.share("C"), abs=1e-4)}
    assert (d.requested, d.scored, d.errored) == (6, 6, 0)
    # every answer was graded once, by the judge (the model also answered the preflight check)
    assert stats["judge"]["requests"] == 6 and stats["model"]["requests"] in (6, 7)
    # 4 samples in flight, but the judge's bound holds
    assert stats["judge"]["max_in_flight"] <= 2
    # the judge's 0/1 verdicts give the score a Wilson interval like any accuracy
    assert d.ci_method == "wilson" and d.n == 6 and d.ci95[0] < d.score < d.ci95[1]


def test_the_judges_key_never_reaches_files_or_events(judged: tuple[EvalResult, list, dict]) -> None:
    result, events, _ = judged
    assert result.output_dir
    for path in Path(result.output_dir).rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            assert JUDGE_KEY not in text and MODEL_KEY not in text, path
    assert JUDGE_KEY not in json.dumps(events)
    config = json.loads((Path(result.output_dir) / "config.json").read_text())["config"]
    assert config["judge"]["api_key"] == "***" and config["judge"]["model"] == "judge-model"


def test_a_judge_scored_benchmark_without_a_judge_is_refused_saying_how() -> None:
    for name in ("simple_qa", "alpaca_eval", "aa_lcr"):
        with pytest.raises(ConfigError) as info:
            EvalConfig(model="m", api_url="http://h:1/v1", datasets=[name])
        assert info.value.field == "datasets"
        assert "scored by an LLM judge" in info.value.reason and "pass `judge`" in info.value.reason


@pytest.mark.parametrize(("judge", "field", "fragment"), [
    ({"model": "j"}, "judge.api_url", "required"),
    ({"api_url": "http://h:2/v1"}, "judge.model", "required"),
    ({"api_url": "http://h:2/v1", "model": "j", "temperature": 0}, "judge.temperature", "unknown option"),
    ({"api_url": "http://user:pw@h:2/v1", "model": "j"}, "judge.api_url", "credentials"),
    ({"api_url": "http://h:2/v1", "model": "j", "concurrency": 0}, "judge.concurrency", ">= 1"),
    ({"api_url": "http://h:2/v1", "model": "j", "strategy": "vote"}, "judge.strategy", "one of"),
    ({"api_url": "http://h:2/v1", "model": "j", "generation_config": {"max_tokns": 5}},
     "judge.generation_config.max_tokns", "unknown option"),
    # evalscope would refuse this only after generating every answer
    ({"api_url": "http://h:2/v1", "model": "j", "strategy": "llm_recall"}, "judge.strategy", "no rule scoring"),
])
def test_a_bad_judge_block_names_the_field(judge: dict, field: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        EvalConfig.from_dict({"model": "m", "api_url": "http://h:1/v1", "datasets": ["simple_qa"], "judge": judge})
    assert info.value.field == field and fragment in info.value.reason


def test_the_judges_key_is_redacted_in_the_config_dict_and_repr() -> None:
    config = EvalConfig(model="m", api_url="http://h:1/v1", datasets=["simple_qa"],
                        judge={"api_url": "http://h:2/v1", "model": "j", "api_key": JUDGE_KEY})
    assert config.to_dict()["judge"]["api_key"] == "***"
    assert JUDGE_KEY not in repr(config) and JUDGE_KEY not in json.dumps(config.to_dict())
    assert config.to_dict(redact=False)["judge"]["api_key"] == JUDGE_KEY


def test_the_catalogue_lists_judge_benchmarks_as_runnable_with_a_judge() -> None:
    entries = {e["name"]: e for e in list_benchmarks(include_unsupported=True)}
    # alpaca_eval and aa_lcr declare their judge in the adapter only, without evalscope's metadata flag
    for name in ("simple_qa", "alpaca_eval", "aa_lcr", "arena_hard"):
        assert entries[name]["requires_judge"] is True and entries[name]["supported"] is True, name
    for name in ("gsm8k", "iquiz", "ceval"):
        assert entries[name]["requires_judge"] is False and entries[name]["supported"] is True
    # a multimodal judge benchmark stays refused for what it is
    assert entries["simple_vqa"]["supported"] is False and "multimodal" in entries["simple_vqa"]["unsupported_reason"]
    EvalConfig(model="m", api_url="http://h:1/v1", datasets=["alpaca_eval", "gsm8k"],
               judge={"api_url": "http://h:2/v1", "model": "j"})


def test_the_cli_takes_the_judges_key_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import evalsvc.core.eval
    from evalsvc.cli import main

    seen: list[EvalConfig] = []

    async def fake_run(config: EvalConfig, *, progress: Any = None, cancel: Any = None) -> EvalResult:
        seen.append(config)
        return EvalResult(status="completed", output_dir="/tmp/x", model=config.model)

    monkeypatch.setattr(evalsvc.core.eval, "run_eval_async", fake_run)
    monkeypatch.setenv("EVALSVC_JUDGE_API_KEY", JUDGE_KEY)
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--model", "m", "--api-url", "http://h:8000/v1", "simple_qa", "--no-preflight", "--quiet",
              "--judge", '{"api_url": "http://h:9000/v1", "model": "judge"}', "--repeats", "3", "--json"])
    assert exit_info.value.code == 0
    (config,) = seen
    assert config.judge == {"api_url": "http://h:9000/v1", "model": "judge", "api_key": JUDGE_KEY, "strategy": "auto"}
    assert config.repeats == 3
    assert JUDGE_KEY not in capsys.readouterr().out
    # a bad block is one line naming the field, exit 2
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--model", "m", "--api-url", "http://h:8000/v1", "simple_qa", "--judge", '{"model": "j"}'])
    assert exit_info.value.code == 2
    assert "judge.api_url" in capsys.readouterr().err
