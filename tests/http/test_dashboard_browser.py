"""The dashboard in headless Chromium against a live service: what a user does and sees.

Without a token, with the real engine against the mock: submit a perf job from the form (after a 400 shown
beside its field), watch its progress reach 100 %, read its report, cancel a second job, compare two runs,
filter the list, delete a job. With a token: the page asks for it, sends it as a header (never in a URL),
and then lists and runs jobs. The console stays free of errors and nothing but the service is requested.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests._servers import MockHandle, start_mock
from tests.http._browser_live import LivePage, open_live
from tests.http._live import Live

TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def mock() -> Iterator[MockHandle]:
    with start_mock(ttft_ms=0, itl_ms=1, output_tokens=8) as handle:
        yield handle


def _small(mock: MockHandle, **fields: Any) -> dict[str, Any]:
    return {"model": "mock", "url": mock.chat_url, "dataset": "random", "prompt_tokens": 16, "max_tokens": 8,
            "number": 20, "parallel": 4, **fields}


def _fill_perf_form(page: Any, fields: dict[str, str]) -> None:
    page.wait_for_selector("#submit-form")
    page.fill("#field-model", fields.pop("model"))
    page.fill("#field-url", fields.pop("url"))
    page.click("#more-options summary")
    for name, value in fields.items():
        if name == "dataset":
            page.select_option(f"#field-{name}", f'"{value}"')
        else:
            page.fill(f"#field-{name}", value)


def _text(page: Any, selector: str) -> str:
    return str(page.inner_text(selector))


BAD_REQUEST = "Failed to load resource: the server responded with a status of 400 (Bad Request)"
"""What Chromium itself logs for a fetch answered 400 (the one the test provokes), not a script error."""
NOT_FOUND = "Failed to load resource: the server responded with a status of 404 (Not Found)"


def _clean(opened: LivePage, expected: tuple[str, ...] = ()) -> None:
    assert sorted(opened.errors) == sorted(expected), opened.errors
    assert opened.blocked == [], opened.blocked


def test_submit_watch_report_cancel_compare_without_token(service_factory: Callable[..., Live],
                                                         mock: MockHandle) -> None:
    live = service_factory(targets={})  # the real engines
    expected = live.client.post("/api/v1/jobs/perf", json=_small(mock, number=0)).json()["error"]
    with open_live(live.base_url) as opened:
        page = opened.page
        page.wait_for_selector("#jobs")
        assert "0 jobs" in _text(page, "main") and "no token" in _text(page, "#auth-status")

        # the form is built from /openapi.json; a 400 is shown beside the field it names
        page.click("nav >> text=Submit")
        _fill_perf_form(page, {"model": "mock", "url": mock.chat_url, "number": "0", "parallel": "4",
                               "dataset": "random", "prompt_tokens": "16", "max_tokens": "8"})
        page.click("#submit-form button[type=submit]")
        error = page.wait_for_selector("#error-number:not(:empty)")
        assert error.inner_text() == f"number: {expected['reason']}"
        assert "invalid" in (page.get_attribute("[data-field=number]", "class") or "")
        assert _text(page, "#error-url") == ""

        # fixed, it runs: live progress to 100 %, then the report
        page.fill("#field-number", "20")
        page.click("#submit-form button[type=submit]")
        page.wait_for_selector("#progress >> text=20 / 20 (100%)", timeout=TIMEOUT_MS)
        page.wait_for_selector("dl.meta >> text=completed", timeout=TIMEOUT_MS)
        first = page.url.rsplit("/", 1)[1]
        report = page.frame_locator("iframe.report")
        report.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=TIMEOUT_MS)
        assert "Load test of mock" in report.locator("body").inner_text()
        assert page.get_attribute("#report a", "href") == f"/api/v1/jobs/{first}/report"
        assert f"evalsvc job {first} (perf) request_id=" in _text(page, "#log")

        # a second, long job is cancelled from its page
        second = live.client.post("/api/v1/jobs/perf", json=_small(mock, number=100000, parallel=1)).json()["job_id"]
        live.wait_progress(second)
        page.goto(f"{live.base_url}/ui#/job/{second}")
        page.wait_for_selector("#progress >> text=/ of 100000|\\/ 100000/", timeout=TIMEOUT_MS)
        page.click("button:has-text('Cancel')")
        page.wait_for_selector("dl.meta >> text=cancelled", timeout=TIMEOUT_MS)
        assert page.is_visible("button:has-text('Delete')")

        # compare two finished runs
        third = live.client.post("/api/v1/perf", json=_small(mock)).json()["job_id"]
        page.click("nav >> text=Compare")
        page.wait_for_selector("#compare-form")
        page.select_option("#compare-base", first)
        page.select_option("#compare-new", third)
        page.click("#compare-form button[type=submit]")
        page.wait_for_selector("#comparison table", timeout=TIMEOUT_MS)
        shown = _text(page, "#comparison")
        assert "perf runs:" in shown and "metrics compared" in shown
        assert "parallel_4_number_20" in shown and "ttft_ms.p50" in shown and "request_throughput" in shown
        # below the table, the comparison page: both runs on the same charts, drawn inside its sandboxed frame
        page.wait_for_selector("#comparison iframe.report", timeout=TIMEOUT_MS)
        frame = page.frame_locator("#comparison iframe.report")
        frame.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=TIMEOUT_MS)
        assert frame.locator(".js-plotly-plot").count() >= 2

        # the list, filtered; a job deleted from its page
        page.click("nav >> text=Jobs")
        page.wait_for_selector(f"tr[data-job='{third}']")
        assert "3 jobs" in _text(page, "main")
        row = _text(page, f"tr[data-job='{first}']")
        assert "perf" in row and "completed" in row and "mock" in row and "100%" in row
        page.select_option("#filter-state", "cancelled")
        page.wait_for_selector("text=1 job", timeout=TIMEOUT_MS)
        assert page.locator("#jobs tbody tr").count() == 1 and page.is_visible(f"tr[data-job='{second}']")
        page.goto(f"{live.base_url}/ui#/job/{second}")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("button:has-text('Delete')")
        page.wait_for_selector("#jobs")
        page.wait_for_selector("text=2 jobs", timeout=TIMEOUT_MS)
        assert live.client.get(f"/api/v1/jobs/{second}").status_code == 404
        _clean(opened, expected=(BAD_REQUEST,))


def test_token_is_asked_for_and_sent_as_a_header(service_factory: Callable[..., Live]) -> None:
    live = service_factory(token="tok-Browser-1")  # stand-in engines: this is about the token
    with open_live(live.base_url) as opened:
        page = opened.page
        seen: list[tuple[str, str | None]] = []
        failed: list[tuple[str, int]] = []
        page.on("request", lambda r: seen.append((r.url, r.headers.get("authorization"))))
        page.on("response", lambda r: failed.append((r.url, r.status)) if r.status >= 400 else None)
        page.wait_for_selector("text=This service needs a bearer token")
        page.fill("#token", "tok-Browser-1")
        page.click("#login button[type=submit]")
        page.wait_for_selector("text=0 jobs")
        assert "token set for this browser session" in _text(page, "#auth-status")
        assert page.input_value("#token") == ""  # not left in the field
        # one form per job kind, one field per property of its request schema in /openapi.json
        schemas = live.client.get("/openapi.json").json()["components"]["schemas"]
        page.click("nav >> text=Submit")
        page.click(".tabs >> text=eval")
        page.wait_for_selector("#field-api_url")
        shown = page.eval_on_selector_all("[data-field]", "els => els.map(e => e.dataset.field)")
        assert sorted(shown) == sorted(schemas["EvalRequest"]["properties"])
        assert "api_url (required)" in _text(page, "#submit-form")
        page.fill("#field-model", "fake")
        page.fill("#field-api_url", "http://127.0.0.1:9/v1")
        page.select_option("#field-datasets", ['"gsm8k"', '"arc"'])  # a list field of named choices
        page.click("#more-options summary")
        page.fill("#field-limit", "3")
        page.click("#submit-form button[type=submit]")
        page.wait_for_selector("dl.meta >> text=completed", timeout=TIMEOUT_MS)
        assert "gsm8k: 3 / 3 (100%)" in _text(page, "#progress") and "arc: 3 / 3 (100%)" in _text(page, "#progress")
        eval_id = page.url.rsplit("/", 1)[1]
        page.click("nav >> text=Submit")
        page.click(".tabs >> text=perf")
        page.wait_for_selector("#field-url")
        shown = page.eval_on_selector_all("[data-field]", "els => els.map(e => e.dataset.field)")
        assert sorted(shown) == sorted(schemas["PerfRequest"]["properties"])
        assert page.get_attribute("#field-api_key", "type") == "password"
        _fill_perf_form(page, {"model": "fake", "url": "http://127.0.0.1:9/v1/chat/completions", "number": "40"})
        page.click("#submit-form button[type=submit]")
        page.wait_for_selector("#progress >> text=40 / 40 (100%)", timeout=TIMEOUT_MS)
        page.wait_for_selector("dl.meta >> text=completed", timeout=TIMEOUT_MS)
        job_id = page.url.rsplit("/", 1)[1]
        page.wait_for_selector(f"#report >> text=job {job_id} has no report.html")  # the stand-in writes none
        page.reload()  # the session keeps the token
        page.wait_for_selector("dl.meta >> text=completed", timeout=TIMEOUT_MS)
        page.wait_for_selector(f"#report >> text=job {job_id} has no report.html")
        api_calls = [(url, auth) for url, auth in seen if "/api/" in url]
        assert api_calls and all(auth == "Bearer tok-Browser-1" for _, auth in api_calls)
        assert not any("tok-Browser-1" in url for url, _ in seen)
        page.click("#forget")
        page.wait_for_selector("text=This service needs a bearer token")
        # the only failed requests: the report the stand-in engine did not write, once per page load
        assert failed == [(f"{live.base_url}/api/v1/jobs/{eval_id}/report", 404),
                          *[(f"{live.base_url}/api/v1/jobs/{job_id}/report", 404)] * 2]
        _clean(opened, expected=(NOT_FOUND,) * 3)
