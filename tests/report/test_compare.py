"""`evalsvc compare` and the library's compare(): noise verdicts, the --fail-on grammar, exit codes, --json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evalsvc import run_perf
from evalsvc.cli import main
from evalsvc.core.errors import ConfigError
from evalsvc.core.report.compare import bootstrap_diff, compare, load_run, newcombe_diff, parse_rules
from tests._perfrun import cfg
from tests._servers import start_mock


def _perf_run(tmp: Path, ttft_ms: float, seed: int) -> str:
    with start_mock(ttft_ms=ttft_ms, itl_ms=2, jitter_ms=40, seed=seed) as mock:
        result = run_perf(cfg(mock.chat_url, tmp, number=60, parallel=6, max_tokens=8, report=False))
    assert result.status == "completed"
    return str(result.output_dir)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Two runs with the same mock settings (seeded jitter) and one with its TTFT raised 200 -> 260 ms."""
    tmp = tmp_path_factory.mktemp("compare")
    yield {"base": _perf_run(tmp / "a", 200, seed=1), "same": _perf_run(tmp / "b", 200, seed=1),
           "slow": _perf_run(tmp / "c", 260, seed=1)}


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_same_settings_no_change_beyond_noise_exit_0(runs: dict[str, str], capsys: Any) -> None:
    rc, out, _ = _cli(["compare", runs["base"], runs["same"], "--fail-on", "ttft_ms.p50>+10%"], capsys)
    assert rc == 0
    assert "no change beyond noise" in out
    cmp = compare(runs["base"], runs["same"])
    ttft = next(r for r in cmp.rows if r.metric == "ttft_ms.p50")
    assert ttft.noise == "within" and ttft.ci_low is not None and ttft.ci_low < 0 < (ttft.ci_high or 0)
    assert ttft.base is not None and 150 < ttft.base < 260


def test_ttft_raised_is_flagged_and_fails_the_gate(runs: dict[str, str], capsys: Any) -> None:
    rc, out, _ = _cli(["compare", runs["base"], runs["slow"], "--fail-on", "ttft_ms.p50>+10%"], capsys)
    assert rc == 1
    assert "REGRESSION" in out and "FAILED ttft_ms.p50>+10%" in out
    ttft = next(r for r in compare(runs["base"], runs["slow"]).rows if r.metric == "ttft_ms.p50")
    assert ttft.noise == "beyond" and ttft.change is not None and 40 < ttft.change < 80
    assert ttft.ci_low is not None and ttft.ci_low > 0
    # the same change is no failure under a threshold it does not pass, nor in the other direction
    assert _cli(["compare", runs["base"], runs["slow"], "--fail-on", "ttft_ms.p50>+50%"], capsys)[0] == 0
    assert _cli(["compare", runs["base"], runs["slow"], "--fail-on", "ttft_ms.p50<-10%"], capsys)[0] == 0


def test_throughput_has_no_noise_verdict(runs: dict[str, str]) -> None:
    cmp = compare(runs["base"], runs["same"])
    (row,) = [r for r in cmp.rows if r.metric == "request_throughput"]
    assert row.noise is None and row.ci_low is None and "no noise verdict" in row.method
    assert row.base and row.new and row.change == pytest.approx(row.new - row.base)


def test_json_shape(runs: dict[str, str], capsys: Any) -> None:
    rc, out, _ = _cli(["compare", runs["base"], runs["slow"], "--fail-on", "ttft_ms.p50>+10%", "--json"], capsys)
    assert rc == 1
    data = json.loads(out)
    assert data["kind"] == "perf" and data["passed"] is False
    assert data["failures"] == [{"rule": "ttft_ms.p50>+10%", "point": "parallel_6_number_60",
                                 "metric": "ttft_ms.p50"}]
    row = next(r for r in data["rows"] if r["metric"] == "ttft_ms.p50")
    assert set(row) == {"point", "metric", "base", "new", "change", "rel_change", "ci_low", "ci_high", "noise",
                        "method"}
    assert row["noise"] == "beyond" and row["point"] == "parallel_6_number_60"


def test_summary_json_path_is_accepted(runs: dict[str, str]) -> None:
    run = load_run(Path(runs["base"]) / "summary.json")
    assert run.kind == "perf" and list(run.perf_points) == ["parallel_6_number_60"]


@pytest.mark.parametrize("text, metric, op, threshold, relative", [
    ("ttft_ms.p99>+10%", "ttft_ms.p99", ">", 0.10, True),
    (" request_throughput < -5% ", "request_throughput", "<", -0.05, True),
    ("gsm8k.score<-0.02", "gsm8k.score", "<", -0.02, False),
    ("latency_ms.mean>50", "latency_ms.mean", ">", 50.0, False),
])
def test_rule_grammar(text: str, metric: str, op: str, threshold: float, relative: bool) -> None:
    (rule,) = parse_rules(text)
    assert (rule.metric, rule.op, rule.relative) == (metric, op, relative)
    assert rule.threshold == pytest.approx(threshold)


def test_several_rules() -> None:
    rules = parse_rules("ttft_ms.p99>+10%,request_throughput<-5%,gsm8k.score<-0.02")
    assert [r.metric for r in rules] == ["ttft_ms.p99", "request_throughput", "gsm8k.score"]


@pytest.mark.parametrize("text, says", [
    ("ttft_ms.p99=10%", "'ttft_ms.p99=10%' is not METRIC>THRESHOLD"),
    ("ttft_ms.p99>", "is not METRIC>THRESHOLD"),
    ("ttft.p99>+10%", "unknown metric 'ttft.p99'"),
    ("ttft_ms.p42>+10%", "unknown metric 'ttft_ms.p42'"),
    ("ttft_ms.p99>ten%", "is not METRIC>THRESHOLD"),
    ("", "no rule given"),
])
def test_bad_rules_exit_2_with_one_line(text: str, says: str, tmp_path: Path, capsys: Any) -> None:
    with pytest.raises(ConfigError):
        parse_rules(text)
    rc, out, err = _cli(["compare", str(tmp_path), str(tmp_path), "--fail-on", text], capsys)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("ConfigError: --fail-on: ") and says in err


def test_not_a_run_exit_2_naming_the_path(tmp_path: Path, capsys: Any) -> None:
    rc, _, err = _cli(["compare", str(tmp_path / "nope"), str(tmp_path)], capsys)
    assert rc == 2 and err.count("\n") == 1 and str(tmp_path / "nope") in err
    (tmp_path / "summary.json").write_text('{"something": 1}')
    with pytest.raises(ConfigError, match="neither perf results nor eval results"):
        load_run(tmp_path)


def _eval_summary(path: Path, scores: dict[str, tuple[float, int]]) -> str:
    path.mkdir()
    result = {name: {"score": s, "metric": "AverageAccuracy", "requested": n, "scored": n, "errored": 0}
              for name, (s, n) in scores.items()}
    (path / "summary.json").write_text(json.dumps({"status": "completed", "output_dir": str(path),
                                                   "result": result}))
    return str(path)


def test_eval_scores_newcombe(tmp_path: Path, capsys: Any) -> None:
    base = _eval_summary(tmp_path / "base", {"gsm8k": (0.80, 1000), "arc": (0.70, 200)})
    new = _eval_summary(tmp_path / "new", {"gsm8k": (0.70, 1000), "arc": (0.69, 200)})
    rows = {r.metric: r for r in compare(base, new).rows}
    assert rows["gsm8k.score"].noise == "beyond" and rows["gsm8k.score"].change == pytest.approx(-0.10)
    assert rows["arc.score"].noise == "within"
    assert "Newcombe" in rows["gsm8k.score"].method
    assert _cli(["compare", base, new, "--fail-on", "gsm8k.score<-0.02"], capsys)[0] == 1
    # arc fell by 0.01 < 0.02, and is within noise anyway; a perf rule does not apply to eval runs
    assert _cli(["compare", base, new, "--fail-on", "arc.score<-0.005,ttft_ms.p99>+10%"], capsys)[0] == 0
    rc, _, err = _cli(["compare", base, new, "--fail-on", "mmlu.score<-0.02"], capsys)
    assert rc == 2 and "no metric 'mmlu.score'" in err


def test_perf_and_eval_runs_do_not_compare(runs: dict[str, str], tmp_path: Path) -> None:
    ev = _eval_summary(tmp_path / "ev", {"gsm8k": (0.5, 10)})
    with pytest.raises(ConfigError, match="cannot compare a perf run"):
        compare(runs["base"], ev)


def test_newcombe_matches_reference() -> None:
    # Newcombe (1998), Table II example (e): 56/70 vs 48/80 -> difference 0.2, 95% interval 0.0524 to 0.3339
    low, high = newcombe_diff(48 / 80, 80, 56 / 70, 70)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_bootstrap_is_seeded_and_centred() -> None:
    rng = np.random.default_rng(7)
    a, b = list(rng.gamma(4, 50, 10_000)), list(rng.gamma(4, 50, 10_000) + 20)
    first = bootstrap_diff(a, b)
    assert first == bootstrap_diff(a, b)
    for stat in ("mean", "p50", "p99"):
        d, low, high = first[stat]
        assert low < d < high
    assert first["mean"][1] > 0  # a 20 ms shift of 10k requests is beyond noise


def test_tail_percentiles_need_enough_requests(runs: dict[str, str]) -> None:
    rows = {r.metric: r for r in compare(runs["base"], runs["slow"]).rows}
    assert rows["ttft_ms.p99"].noise is None and "1000 needed" in rows["ttft_ms.p99"].method
    assert rows["ttft_ms.p90"].noise is None and "100 needed" in rows["ttft_ms.p90"].method
    assert rows["ttft_ms.p50"].noise == "beyond"
