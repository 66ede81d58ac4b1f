"""`evalsvc benchmarks` lists what can run as installed; everything else is refused with the reason:
an LLM judge (also when only the adapter's scoring policy says so), docker, audio / multimodal, or an
optional package that is not installed (named, with the pip line)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from evalsvc import ConfigError, EvalConfig
from evalsvc.core.eval import _catalogue
from evalsvc.core.eval._catalogue import (
    adapter_facts,
    benchmark_meta,
    list_benchmarks,
    needs_judge,
    unsupported_reason,
)


def _reason(name: str) -> str | None:
    return unsupported_reason(benchmark_meta(name), name)


def test_judges_declared_by_the_scoring_policy_are_detected() -> None:
    # alpaca_eval and aa_lcr declare `scoring_policy = JUDGE_ONLY` without the catalogue's `requires_judge`
    for name in ("alpaca_eval", "aa_lcr"):
        assert not benchmark_meta(name).get("requires_judge")
        assert adapter_facts(name).judge == "judge_only"
        assert needs_judge(name) and _reason(name) is None  # runnable, given a `judge`
    # aime defines a judge it only uses when asked (rule scoring by default): runnable without one
    assert adapter_facts("aime24").judge is None and not needs_judge("aime24") and _reason("aime24") is None
    with pytest.raises(ConfigError, match=r"datasets: 'alpaca_eval' is scored by an LLM judge"):
        EvalConfig(model="m", api_url="http://127.0.0.1:9/v1", datasets=["alpaca_eval"])


def test_docker_audio_and_multimodal_benchmarks_say_so() -> None:
    assert _reason("swe_bench_lite") == ("needs docker to build and run each task's environment, which evalsvc "
                                         "does not provide")
    assert _reason("seed_tts_eval") == "is an audio benchmark; evalsvc evaluates text benchmarks"
    assert _reason("refcoco") == "is a multimodal benchmark (images); evalsvc evaluates text benchmarks"


def test_a_missing_optional_package_is_named_with_the_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ("langdetect", "langdetect") in adapter_facts("ifeval").imports
    assert ("seqeval", "seqeval") in adapter_facts("conll2003").imports  # from the NER base adapter
    monkeypatch.setattr(_catalogue, "_installed", lambda module: module not in {"langdetect", "seqeval"})
    assert _reason("ifeval") == ("needs the optional package langdetect, not installed (pip install langdetect; "
                                 "`pip install 'evalsvc[eval-extras]'` installs the light ones)")
    assert "seqeval" in (_reason("conll2003") or "")
    with pytest.raises(ConfigError, match=r"datasets: 'ifeval' needs the optional package langdetect"):
        EvalConfig(model="m", api_url="http://127.0.0.1:9/v1", datasets=["ifeval"])
    names = {e["name"] for e in list_benchmarks()}
    assert "ifeval" not in names and "conll2003" not in names and "gsm8k" in names
    monkeypatch.setattr(_catalogue, "_installed", lambda module: True)
    assert _reason("ifeval") is None and "ifeval" in {e["name"] for e in list_benchmarks()}


def test_the_cli_lists_the_runnable_and_with_all_the_rest_with_reasons() -> None:
    def run(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "evalsvc", "benchmarks", *args], capture_output=True, text=True,
                             env={**os.environ, "COLUMNS": "200"}, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    everything = list_benchmarks(include_unsupported=True)
    runnable = [e for e in everything if e["supported"]]
    plain = run()
    assert f"{len(runnable)} benchmarks runnable as installed" in plain
    assert f"{len(everything) - len(runnable)} more cannot run as installed" in plain and "--all" in plain
    # a judge-scored benchmark is runnable, given a judge: listed, and marked so
    assert "gsm8k" in plain and "(needs --judge: scored by an LLM judge) AlpacaEval" in plain
    full = run("--all")
    assert "swe_bench_lite needs docker" in full


def test_a_fraction_that_selects_no_sample_is_refused_by_the_config_itself() -> None:
    # one rule, in EvalConfig: the library, the CLI and the service (400 at submission) all refuse it
    with pytest.raises(ConfigError, match=r"^limit: the fraction 0.001 selects no sample of ceval's smallest subset"):
        EvalConfig(model="m", api_url="http://127.0.0.1:9/v1", datasets=["ceval"], limit=0.001)
    EvalConfig(model="m", api_url="http://127.0.0.1:9/v1", datasets=["ceval"], limit=0.5)
