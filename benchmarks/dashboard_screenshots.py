"""PNG screenshots of every dashboard page, against a live service and the mock (headless system Chromium).

Starts `evalsvc mock` and the service (127.0.0.1), makes a few jobs (two completed perf runs, one cancelled,
one running), then writes into OUTDIR:

    01-jobs.png             the job list (a running job with its progress)
    02-job-running.png      a running job: live progress bar, cancel button, log
    03-job-report.png       a completed job: progress 100 %, its report.html below
    04-submit-perf.png      the perf form, with the API's 400 message beside the field it names
    05-submit-eval.png      the eval form (built from the same /openapi.json)
    06-compare.png          two runs compared
    07-sign-in.png          a service with a token: the page asks for it

    python benchmarks/dashboard_screenshots.py OUTDIR
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from evalsvc.http import create_app  # noqa: E402
from tests._servers import start_mock  # noqa: E402
from tests.http._browser_live import open_live  # noqa: E402
from tests.http._live import serve_app  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", type=Path)
    args = parser.parse_args()
    out: Path = args.outdir
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="evalsvc-shots-") as tmp, \
            start_mock(ttft_ms=0, itl_ms=2, output_tokens=16) as mock, \
            serve_app(create_app(Path(tmp) / "out", targets={})) as live:
        small = {"model": "mock", "url": mock.chat_url, "dataset": "random", "prompt_tokens": 32,
                 "max_tokens": 16, "number": [50, 200], "parallel": [1, 8]}
        first = live.client.post("/api/v1/perf", json=small).json()["job_id"]
        second = live.client.post("/api/v1/perf", json=small).json()["job_id"]
        cancelled = live.client.post("/api/v1/jobs/perf", json={**small, "number": 50000, "parallel": 2}).json()
        live.wait_progress(cancelled["job_id"])
        live.client.post(f"/api/v1/jobs/{cancelled['job_id']}/cancel")
        live.wait_state(cancelled["job_id"], ("cancelled",))
        running = live.client.post("/api/v1/jobs/perf", json={**small, "number": 100000, "parallel": 4}).json()
        running_id = running["job_id"]
        live.wait_progress(running_id)

        with open_live(live.base_url, width=1280, height=800) as opened:
            page = opened.page
            shots: list[str] = []

            def shot(name: str, full: bool = True) -> None:
                page.screenshot(path=str(out / name), full_page=full)
                shots.append(name)

            page.wait_for_selector(f"tr[data-job='{running_id}']")
            shot("01-jobs.png")
            page.goto(f"{live.base_url}/ui#/job/{running_id}")
            page.wait_for_selector("#progress progress")
            time.sleep(2.5)  # a few progress events and a log refresh
            shot("02-job-running.png")
            page.goto(f"{live.base_url}/ui#/job/{first}")
            page.frame_locator("iframe.report").locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
            shot("03-job-report.png", full=False)
            page.goto(f"{live.base_url}/ui#/submit/perf")
            page.fill("#field-model", "mock")
            page.fill("#field-url", mock.chat_url)
            page.click("#more-options summary")
            page.fill("#field-parallel", "0")
            page.click("#submit-form button[type=submit]")
            page.wait_for_selector("#error-parallel:not(:empty)")
            page.locator("[data-field=parallel]").scroll_into_view_if_needed()
            shot("04-submit-perf.png", full=False)
            page.goto(f"{live.base_url}/ui#/submit/eval")
            page.wait_for_selector("#field-api_url")
            shot("05-submit-eval.png", full=False)
            page.goto(f"{live.base_url}/ui#/compare")
            page.select_option("#compare-base", first)
            page.select_option("#compare-new", second)
            page.click("#compare-form button[type=submit]")
            page.wait_for_selector("#comparison table", timeout=60_000)
            shot("06-compare.png", full=False)
            live.client.post(f"/api/v1/jobs/{running_id}/cancel")
            errors = [e for e in opened.errors if "status of 400" not in e]  # the 400 the form shot provokes

        with serve_app(create_app(Path(tmp) / "out2", token="screenshot-token"), token="screenshot-token") as locked, \
                open_live(locked.base_url, width=1280, height=500) as opened:
            opened.page.wait_for_selector("text=This service needs a bearer token")
            opened.page.screenshot(path=str(out / "07-sign-in.png"))
            shots.append("07-sign-in.png")
            errors += opened.errors
    for name in shots:
        print(out / name)
    if errors:
        print(f"console errors: {errors}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
