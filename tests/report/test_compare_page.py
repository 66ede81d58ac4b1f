"""The comparison page `evalsvc compare` writes: both runs on the same charts, the table with its verdicts,
opened from disk in headless Chromium with the network refused."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalsvc import run_perf
from evalsvc.cli import main
from evalsvc.core.report.compare import compare, parse_rules
from tests._perfrun import cfg
from tests._servers import start_mock
from tests.report._browser import open_report

KEY = "sk-compare-page-0123456789"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A 2-point sweep, and the same sweep against a mock whose TTFT was raised from 200 to 260 ms."""
    tmp = tmp_path_factory.mktemp("compare-page")
    out = {}
    for name, ttft in (("base", 200), ("slow", 260)):
        with start_mock(ttft_ms=ttft, itl_ms=2, jitter_ms=20, seed=1) as mock:
            result = run_perf(cfg(mock.chat_url, tmp / name, number=[30, 60], parallel=[3, 6], max_tokens=8,
                                  report=False, api_key=KEY))
        assert result.status == "completed", result.error
        out[name] = Path(result.output_dir)
    yield out


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_page_shows_both_runs_and_the_regression(runs: dict[str, Path], capsys: Any) -> None:
    rc, out, _ = _cli(["compare", str(runs["base"]), str(runs["slow"]), "--fail-on", "ttft_ms.p50>+10%"], capsys)
    assert rc == 1
    page = runs["slow"] / "compare.html"  # the default: NEW's directory
    assert f"comparison page: {page}" in out
    html = page.read_text()
    assert KEY not in html and html.count("* plotly.js v") == 1  # plotly.js inlined once, fetched never
    keys = list(json.loads((runs["base"] / "summary.json").read_text())["results"])
    with open_report(page) as opened:
        assert opened.errors == [] and opened.blocked == []
        plots = {p["id"]: p for p in opened.plots()}
        assert set(plots) == {"chart-throughput", "chart-latency", "chart-dist-ttft_ms", "chart-dist-tpot_ms",
                              "chart-dist-itl_ms", "chart-dist-latency_ms"}
        assert all(p["rendered"] and p["points"] > 0 for p in plots.values()), plots
        # the sweep curves of both runs, and each matched point's distribution of both runs
        assert {"base · request throughput (req/s)", "new · request throughput (req/s)"} \
            <= set(plots["chart-throughput"]["names"])
        cdf_names = plots["chart-dist-ttft_ms"]["names"]
        assert {"base · parallel 3", "new · parallel 3", "base · parallel 6", "new · parallel 6"} <= set(cdf_names)
        # the table: every row of the comparison, the failing one marked
        rows = opened.page.evaluate("""() => Array.from(document.querySelectorAll('#comparison-table tbody tr'))
            .map(tr => [tr.dataset.point, tr.dataset.metric, tr.dataset.verdict,
                        tr.querySelector('td.verdict').textContent.trim()])""")
        cmp = compare(runs["base"], runs["slow"])
        assert [(p, m) for p, m, _, _ in rows] == [(r.point, r.metric) for r in cmp.rows]
        ttft = {p: (v, text) for p, m, v, text in rows if m == "ttft_ms.p50"}
        assert set(ttft) == set(keys)
        assert all(v == "regression" and text == "REGRESSION (beyond noise)" for v, text in ttft.values())
        assert opened.page.locator("tr.regression").count() == len(keys)
        banner = opened.page.locator("#verdict-banner").inner_text()
        assert "Regression" in banner and "ttft_ms.p50>+10%" in banner
        settings = dict(opened.page.evaluate("""() => Array.from(document.querySelectorAll('#settings-table tbody tr'))
            .map(tr => [tr.querySelector('th').textContent.trim(), tr.querySelector('td').textContent.trim()])"""))
        assert settings["api_key"] == "***" and settings["model"] == "mock-model"


def test_same_run_page_says_no_change(runs: dict[str, Path], tmp_path: Path, capsys: Any) -> None:
    target = tmp_path / "out" / "same.html"
    rc, out, _ = _cli(["compare", str(runs["base"]), str(runs["base"]), "--html", str(target), "--json"], capsys)
    assert rc == 0
    assert json.loads(out)["html"] == str(target)
    html = target.read_text()
    assert 'id="verdict-banner"' in html and "No change beyond noise." in html and "REGRESSION" not in html


def test_no_html_and_unwritable_paths(runs: dict[str, Path], tmp_path: Path, capsys: Any) -> None:
    copy = tmp_path / "new"
    copy.mkdir()
    for f in runs["base"].iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    rc, out, _ = _cli(["compare", str(runs["base"]), str(copy), "--no-html", "--json"], capsys)
    assert rc == 0 and json.loads(out)["html"] is None and not (copy / "compare.html").exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    rc, out, err = _cli(["compare", str(runs["base"]), str(copy), "--html", str(blocker / "x.html")], capsys)
    assert rc == 2 and out == "" and err.startswith("ConfigError: --html: cannot write") and err.count("\n") == 1
    if os.geteuid() != 0:  # root writes anywhere
        copy.chmod(0o555)
        try:
            rc, out, err = _cli(["compare", str(runs["base"]), str(copy)], capsys)
        finally:
            copy.chmod(0o755)
        assert rc == 0 and "comparison page not written" in err and "no change beyond noise" in out


def _eval_summary(path: Path, scores: dict[str, tuple[float, int]]) -> Path:
    path.mkdir()
    result = {name: {"score": s, "metric": "AverageAccuracy", "requested": n, "scored": n, "errored": 0}
              for name, (s, n) in scores.items()}
    (path / "summary.json").write_text(json.dumps({"status": "completed", "result": result}))
    return path


def test_eval_page_scores_side_by_side_with_intervals(tmp_path: Path) -> None:
    base = _eval_summary(tmp_path / "base", {"gsm8k": (0.80, 1000), "arc": (0.70, 200)})
    new = _eval_summary(tmp_path / "new", {"gsm8k": (0.70, 1000), "arc": (0.69, 200)})
    cmp = compare(base, new)
    page = cmp.write_html(tmp_path / "cmp.html", cmp.gate(parse_rules("gsm8k.score<-0.02")))
    with open_report(page) as opened:
        assert opened.errors == [] and opened.blocked == []
        (plot,) = opened.plots()
        assert plot["rendered"] and plot["names"] == ["base", "new"] and plot["points"] == 4
        bars = opened.page.evaluate("""() => document.getElementById('chart-scores').data
            .map(t => ({y: t.y, plus: t.error_y.array, minus: t.error_y.arrayminus}))""")
        assert bars[0]["y"] == [0.8, 0.7] and bars[1]["y"] == [0.7, 0.69]
        # Wilson 95 %: 800/1000 -> [0.7741, 0.8237]
        assert bars[0]["minus"][0] == pytest.approx(0.8 - 0.7741, abs=1e-4)
        assert bars[0]["plus"][0] == pytest.approx(0.8237 - 0.8, abs=1e-4)
        verdicts = dict(opened.page.evaluate("""() => Array.from(
            document.querySelectorAll('#comparison-table tbody tr'))
            .map(tr => [tr.dataset.metric, tr.dataset.verdict])"""))
        assert verdicts == {"gsm8k.score": "regression", "arc.score": "within noise"}
