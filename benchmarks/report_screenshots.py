"""Screenshots (full-page PNG) of the three HTML pages evalsvc writes: a perf sweep report, an eval report and a
comparison page, each opened from disk in headless Chromium with the network refused.

Starts the simulated endpoint (`evalsvc mock`), runs a 3-point sweep (TTFT 200 ms, with SLOs), the same sweep
against a mock whose TTFT is 260 ms, compares the two (gate `ttft_ms.p50>+10%`), and, when evalscope is
installed, a small three-dataset evaluation (gsm8k, iquiz, ceval from local copies; the mock answers some right,
some wrong, and fails one request in five). Needs the system Chromium (`apt-get install chromium`) and Playwright;
Chinese text in the eval page needs a CJK font (`apt-get install fonts-noto-cjk`).

    python benchmarks/report_screenshots.py OUTDIR

OUTDIR receives perf_report.png, compare.png, eval_report.png (and the run directories under OUTDIR/runs).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalsvc import EvalConfig, PerfConfig, run_eval, run_perf
from tests._evaldata import small_suite
from tests._servers import start_mock

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def _sweep(work: Path, ttft_ms: float) -> Path:
    with start_mock(ttft_ms=ttft_ms, itl_ms=8, jitter_ms=40, output_tokens=48, seed=7) as mock:
        config = PerfConfig(model="mock-model", url=mock.chat_url, api_key="sk-screenshot-0123456789",
                            dataset="random", prompt_tokens=64, max_tokens=48, number=[60, 160, 320],
                            parallel=[2, 8, 32], slo={"ttft_ms": 300, "latency_ms": 900}, work_dir=str(work),
                            preflight=False)
        t0 = time.monotonic()
        result = run_perf(config)
    print(f"perf sweep (mock TTFT {ttft_ms:g} ms): {result.status} in {time.monotonic() - t0:.1f} s -> "
          f"{result.output_dir}")
    return Path(result.output_dir)


def _eval(work: Path) -> Path | None:
    if importlib.util.find_spec("evalscope") is None:
        print("evalscope is not installed: no eval report (pip install 'evalsvc[eval]')")
        return None
    suite = small_suite(work / "data")
    with start_mock(answers=suite.answers, ttft_ms=0, itl_ms=0, error_500=0.2, fault_cycle=5) as mock:
        result = run_eval(EvalConfig(model="mock-model", api_url=mock.base_url, api_key="sk-screenshot-0123456789",
                                     datasets=["gsm8k", "iquiz", "ceval"], dataset_dir=str(suite.dataset_dir),
                                     work_dir=str(work), retries=0, retry_interval=0, preflight=False,
                                     generation_config={"temperature": 0.0, "max_tokens": 64}))
    print(f"eval: {result.status} -> {result.output_dir}")
    return Path(result.output_dir or "")


def _chromium() -> str:
    for candidate in (os.environ.get("EVALSVC_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    sys.exit("no Chromium found: apt-get install -y chromium (or set EVALSVC_CHROMIUM)")


def _screenshot(pages: dict[str, Path], outdir: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="evalsvc-shot-") as profile:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, offline=True)
        try:
            context.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else r.abort())
            for name, path in pages.items():
                page = context.new_page()
                errors: list[str] = []
                page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.goto(path.resolve().as_uri(), wait_until="load")
                page.wait_for_function("() => window.Plotly !== undefined && "
                                       "document.querySelectorAll('.js-plotly-plot .main-svg').length > 0",
                                       timeout=60_000)
                page.wait_for_timeout(500)  # the last charts' transitions
                png = outdir / f"{name}.png"
                page.screenshot(path=str(png), full_page=True)
                size = page.evaluate("() => [document.body.scrollWidth, document.body.scrollHeight]")
                charts = page.evaluate("() => document.querySelectorAll('.js-plotly-plot .main-svg').length")
                print(f"{png}: {size[0]}x{size[1]} px page, {charts} chart layers, "
                      f"console errors: {len(errors)}{' ' + '; '.join(errors) if errors else ''}")
                page.close()
        finally:
            context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", type=Path)
    args = parser.parse_args()
    outdir: Path = args.outdir
    work = outdir / "runs"
    work.mkdir(parents=True, exist_ok=True)
    base = _sweep(work / "base", 200)
    slow = _sweep(work / "slow", 260)
    cmd = [sys.executable, "-m", "evalsvc", "compare", str(base), str(slow), "--fail-on", "ttft_ms.p50>+10%",
           "--html", str(work / "compare.html")]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    print(f"evalsvc compare ... --fail-on 'ttft_ms.p50>+10%': exit {done.returncode}")
    pages = {"perf_report": base / "report.html", "compare": work / "compare.html"}
    ev = _eval(work / "eval")
    if ev is not None:
        pages["eval_report"] = ev / "report.html"
    _screenshot(pages, outdir)


if __name__ == "__main__":
    main()
