"""report.html as a user sees it: a real perf run against the mock, opened from disk in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evalsvc import PerfConfig, run_perf
from tests._servers import start_mock
from tests.report._browser import open_report

KEY = "sk-report-test-0123456789"
SLO = {"ttft_ms": 40.0, "latency_ms": 200.0}


def _config(url: str, work_dir: Path, **over: Any) -> PerfConfig:
    base: dict[str, Any] = {"model": "mock-model", "url": url, "api_key": KEY, "dataset": "random",
                            "prompt_tokens": 16, "max_tokens": 16, "work_dir": str(work_dir), "preflight": False}
    base.update(over)
    return PerfConfig(**base)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2-point sweep with SLOs against a mock failing 1 request in 5; a 1-point run without SLOs or faults."""
    work = tmp_path_factory.mktemp("report-runs")
    out: dict[str, Path] = {}
    with start_mock(ttft_ms=20, itl_ms=2, output_tokens=8, fault_cycle=5, error_500=0.2) as faulty:
        result = run_perf(_config(faulty.chat_url, work, number=[20, 40], parallel=[2, 4], slo=SLO))
        assert result.status == "completed", result.error
        out["sweep"] = Path(result.output_dir)
    with start_mock(ttft_ms=5, itl_ms=1, output_tokens=8) as clean:
        result = run_perf(_config(clean.chat_url, work, number=20, parallel=2))
        assert result.status == "completed", result.error
        out["plain"] = Path(result.output_dir)
    return out


def _summary(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    return data


def _table(opened: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = opened.page.evaluate("""() =>
        Array.from(document.querySelectorAll('#summary-table tbody tr')).map(tr => ({
            key: tr.dataset.key,
            cells: Array.from(tr.querySelectorAll('td[data-metric]')).map(td => ({
                metric: td.dataset.metric, stat: td.dataset.stat || '', text: td.textContent.trim()})),
        }))""")
    return rows


def _check_table(opened: Any, summary: dict[str, Any]) -> None:
    rows = _table(opened)
    assert [r["key"] for r in rows] == list(summary["results"])
    for row in rows:
        point = summary["results"][row["key"]]
        assert len(row["cells"]) >= 17
        for cell in row["cells"]:
            if cell["metric"] == "client_bound":
                assert cell["text"] == ("yes" if point["metrics"]["client_bound"] else "no")
                continue
            if cell["stat"]:
                value = point["percentiles"][cell["metric"]][cell["stat"]]
            else:
                value = point["metrics"][cell["metric"]]
            if value is None:
                assert cell["text"] == "–", cell
            else:
                assert float(cell["text"]) == pytest.approx(value, abs=0.0051), cell


def test_sweep_report_shows_the_run(runs: dict[str, Path]) -> None:
    run_dir = runs["sweep"]
    report = run_dir / "report.html"
    assert report.is_file(), "run_perf writes report.html by default"
    summary = _summary(run_dir)
    html = report.read_text()
    assert KEY not in html
    with open_report(report) as opened:
        assert opened.errors == []
        assert opened.blocked == [], "the page must not ask the network for anything"
        _check_table(opened, summary)
        plots = {p["id"]: p for p in opened.plots()}
        points = len(summary["results"])
        # throughput, latency-vs-throughput, 4 distributions, one over-time chart per point, failures
        assert len(plots) == 2 + 4 + points + 1, sorted(plots)
        assert all(p["rendered"] and p["traces"] > 0 and p["points"] > 0 for p in plots.values()), plots
        # goodput beside throughput, and the SLO thresholds drawn where they apply
        assert "goodput (req/s meeting the SLOs)" in plots["chart-throughput"]["names"]
        assert {s["x0"] for s in plots["chart-dist-ttft_ms"]["shapes"]} == {SLO["ttft_ms"]}
        assert {s["x0"] for s in plots["chart-dist-latency_ms"]["shapes"]} == {SLO["latency_ms"]}
        assert plots["chart-dist-tpot_ms"]["shapes"] == []
        assert {s["y0"] for s in plots["chart-latency"]["shapes"]} == set(SLO.values())
        # failures by kind: the mock's injected 500s, per point, as summary.json counts them
        failures = opened.page.evaluate("""() => Array.from(document.querySelectorAll('#failures-table tbody tr'))
            .map(tr => [tr.dataset.key, tr.querySelectorAll('td')[1].textContent.trim()])""")
        assert failures == [[k, str(v["metrics"]["failures_by_kind"].get("http_500", 0))]
                            for k, v in summary["results"].items()]
        assert any(int(n) > 0 for _, n in failures)
        assert plots["chart-failures"]["names"] == ["http_500"]
        # the settings, redacted
        settings = dict(opened.page.evaluate("""() => Array.from(document.querySelectorAll('#settings-table tr'))
            .map(tr => [tr.querySelector('th').textContent.trim(), tr.querySelector('td').textContent.trim()])"""))
        assert settings["api_key"] == "***"
        assert settings["model"] == "mock-model"
        assert json.loads(settings["slo"]) == SLO
        # the banner follows the verdict of summary.json
        bound = any(r["metrics"]["client_bound"] for r in summary["results"].values())
        assert opened.page.locator("#client-bound-banner").count() == (1 if bound else 0)


def test_plain_report_has_no_slo_lines_and_no_failures(runs: dict[str, Path]) -> None:
    run_dir = runs["plain"]
    summary = _summary(run_dir)
    with open_report(run_dir / "report.html") as opened:
        assert opened.errors == [] and opened.blocked == []
        _check_table(opened, summary)
        plots = {p["id"]: p for p in opened.plots()}
        assert len(plots) == 2 + 4 + 1, sorted(plots)
        assert all(p["rendered"] and p["traces"] > 0 for p in plots.values())
        assert all(p["shapes"] == [] for p in plots.values())
        assert "goodput (req/s meeting the SLOs)" not in plots["chart-throughput"]["names"]
        assert opened.page.locator("#no-failures").is_visible()
        assert opened.page.locator("#slo-note").count() == 0


def test_client_bound_banner_shown_when_a_point_was_client_bound(runs: dict[str, Path], tmp_path: Path) -> None:
    # the same files with one point's verdict turned to client-bound, rebuilt by `evalsvc report DIR`
    run_dir = tmp_path / runs["sweep"].name
    shutil.copytree(runs["sweep"], run_dir)
    summary = _summary(run_dir)
    key = list(summary["results"])[1]
    reason = "client CPU busy 97% of the run"
    for point in (summary["results"][key], ):
        point["metrics"]["client_bound"] = True
        point["metrics"]["client_bound_reasons"] = [reason]
    (run_dir / "summary.json").write_text(json.dumps(summary))
    (run_dir / f"summary_{key}.json").write_text(json.dumps(summary["results"][key]))
    (run_dir / "report.html").unlink()
    proc = subprocess.run([sys.executable, "-m", "evalsvc", "report", str(run_dir)], check=False, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(run_dir / "report.html")
    with open_report(run_dir / "report.html") as opened:
        assert opened.errors == []
        banner = opened.page.locator("#client-bound-banner")
        assert banner.is_visible()
        text = banner.inner_text()
        assert "Client-bound" in text and "1 of 2 sweep points" in text and reason in text and key in text
        row = opened.page.locator(f'#summary-table tr[data-key="{key}"] td[data-metric="client_bound"]')
        assert row.inner_text() == "yes"


def test_distributions_from_records_agree_with_the_summary(runs: dict[str, Path]) -> None:
    # the page's histograms and CDFs come from requests_<key>.jsonl; they must be the summary's distributions
    from evalsvc.core.report._data import load_perf_run, quantile

    run = load_perf_run(runs["sweep"])
    for point in run.points:
        for metric in ("ttft_ms", "tpot_ms", "latency_ms"):
            values = sorted(point.values(metric))
            pcts = point.percentiles[metric]
            assert len(values) == pcts["count"] == point.metrics["requests_succeeded"]
            for stat, p in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
                assert quantile(values, p) == pytest.approx(pcts[stat], abs=1e-3), (point.key, metric, stat)
