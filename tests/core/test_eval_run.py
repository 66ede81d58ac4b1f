"""run_eval end to end: real evalscope workers against the simulated endpoint, on small local datasets.

Every score asserted here follows from the canned answers in tests/_evaldata.py, and every count of
errored samples from the mock's exact fault plan.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalsvc import (EndpointStatusError, EndpointTimeout, EndpointUnreachable, EvalConfig, EvalResult, run_eval,
                     run_eval_async)
from tests._evaldata import Suite, ceval_row, gsm8k_row, mcq_row, small_suite, write_local_copy
from tests._servers import MockHandle, start_mock

SECRET = "sk-evalsvc-test-SECRET-4711"
FAST = {"ttft_ms": 0, "itl_ms": 0}


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return small_suite(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="module")
def mock(suite: Suite) -> Iterator[MockHandle]:
    with start_mock(answers=suite.answers, **FAST) as server:
        yield server


def _config(mock: MockHandle, suite: Suite, work_dir: Path, **overrides: Any) -> EvalConfig:
    options: dict[str, Any] = dict(model="mock-model", api_url=mock.base_url, api_key=SECRET,
                                   datasets=["gsm8k", "iquiz", "ceval"], dataset_dir=str(suite.dataset_dir),
                                   work_dir=str(work_dir), retry_interval=0)
    options.update(overrides)
    return EvalConfig(**options)


@pytest.fixture(scope="module")
def full_run(mock: MockHandle, suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> tuple[EvalResult, list]:
    events: list[dict[str, Any]] = []
    result = run_eval(_config(mock, suite, tmp_path_factory.mktemp("out")), progress=events.append)
    return result, events


def test_scores_are_what_the_canned_answers_imply(full_run: tuple[EvalResult, list], suite: Suite) -> None:
    result, _ = full_run
    assert result.status == "completed", result.error
    assert not result.incomplete
    for name in ("gsm8k", "iquiz", "ceval"):
        d = result[name]
        assert d.status == "completed"
        assert d.metric == "accuracy"
        assert d.score == pytest.approx(suite.expected_score(name), abs=1e-4)
        assert (d.requested, d.scored, d.errored) == (suite.count(name), suite.count(name), 0)
    assert result["gsm8k"].score == pytest.approx(0.8)
    assert result["iquiz"].subsets["IQ"]["score"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["iquiz"].subsets["EQ"]["score"] == pytest.approx(0.5)
    assert result["ceval"].subsets["computer_network"] == {"score": pytest.approx(1 / 3, abs=1e-4), "scored": 3,
                                                            "requested": 3, "errored": 0,
                                                            # 1 of 3: stderr sqrt(1/3 * 2/3 / 2), Wilson interval
                                                            "stderr": pytest.approx(1 / 3, abs=1e-6),
                                                            "ci95": [pytest.approx(0.061492, abs=1e-6),
                                                                     pytest.approx(0.792340, abs=1e-6)],
                                                            "n": 3, "ci_method": "wilson"}
    assert result["ceval"].categories["STEM"]["score"] == pytest.approx(0.4)
    assert sorted(result["ceval"].categories["STEM"]["subsets"]) == ["computer_network", "operating_system"]


def test_result_dict_has_the_spec_shape(full_run: tuple[EvalResult, list]) -> None:
    result, _ = full_run
    data = result.to_dict()
    assert data["status"] == "completed" and data["output_dir"] == result.output_dir
    gsm = data["result"]["gsm8k"]
    for key in ("score", "metric", "requested", "scored", "errored", "incomplete", "subsets"):
        assert key in gsm
    assert gsm["subsets"]["main"]["scored"] == 5
    assert json.loads(json.dumps(data)) == data  # plain JSON


def test_output_directory_keeps_evalscope_files_and_evalsvc_summary(full_run: tuple[EvalResult, list]) -> None:
    result, _ = full_run
    root = Path(result.output_dir)
    summary = json.loads((root / "summary.json").read_text())
    assert summary["result"]["iquiz"]["score"] == result["iquiz"].score
    config = json.loads((root / "config.json").read_text())
    assert config["config"]["api_key"] == "***"
    assert "| gsm8k | accuracy | 0.8000 | [0.3755, 0.9638] | 5/5 | 0 | completed |" in (root / "report.md").read_text()
    for name in ("gsm8k", "iquiz", "ceval"):
        d = result[name]
        assert Path(d.report_path).is_file()
        assert d.predictions and all(Path(p).is_file() for p in d.predictions)
        lines = sum(len(Path(p).read_text().splitlines()) for p in d.reviews)
        assert lines == d.scored
        assert (root / name / "configs" / "task_config.yaml").is_file()


def test_api_key_never_reaches_files_or_events(full_run: tuple[EvalResult, list]) -> None:
    result, events = full_run
    for path in Path(result.output_dir).rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path
    assert SECRET not in json.dumps(events)
    assert SECRET not in repr(result) and SECRET not in json.dumps(result.to_dict())


def test_progress_reaches_the_total_of_each_dataset(full_run: tuple[EvalResult, list], suite: Suite) -> None:
    _, events = full_run
    for name in ("gsm8k", "iquiz", "ceval"):
        progress = [e for e in events if e["type"] == "progress" and e["dataset"] == name]
        assert progress, name
        done = [e["done"] for e in progress]
        assert done == sorted(done)
        assert progress[-1] == {"type": "progress", "part": name, "dataset": name, "done": suite.count(name),
                                "total": suite.count(name)}
        statuses = [e["status"] for e in events if e["type"] == "status" and e["dataset"] == name]
        assert statuses == ["starting", "completed"]
    assert all(e["part"] == e["dataset"] for e in events)  # one key for what is running, the old one kept
    (run_status,) = [e for e in events if e["type"] == "status" and e["dataset"] is None]
    assert run_status["output_dir"] == full_run[0].output_dir
    notes = [e for e in events if e["type"] == "log" and e["dataset"] == "ceval" and e["level"] == "WARNING"]
    assert any("2 of its 52 subsets" in e["message"] for e in notes)


def test_endpoint_faults_are_counted_as_errored_never_dropped(tmp_path: Path) -> None:
    # Five IQ questions, all answered right; the mock fails exactly 2 of every 5 requests with a 500.
    rows = [mcq_row(f"[F{i}]", "B") for i in range(5)]
    write_local_copy(tmp_path / "data" / "iquiz", {"IQ": {"test": rows}})
    answers = [{"match": f"[F{i}]", "reply": "答案：B"} for i in range(5)]
    with start_mock(answers=answers, error_500=0.4, fault_cycle=5, **FAST) as mock:
        events: list[dict[str, Any]] = []
        result = run_eval(EvalConfig(model="m", api_url=mock.base_url, datasets=["iquiz"],
                                     dataset_dir=str(tmp_path / "data"), work_dir=str(tmp_path / "out"),
                                     retries=0, preflight=False), progress=events.append)
        assert mock.stats()["faults"]["error_500"] == 2
    d = result["iquiz"]
    assert result.status == "incomplete"  # finished, but the score covers 3 of 5 samples
    assert result.error.startswith("iquiz: 2 of 5 samples errored (e.g. ") and "scores exclude them" in result.error
    assert (d.requested, d.scored, d.errored) == (5, 3, 2)
    assert d.score == 1.0  # evalscope's score covers the 3 scored samples only...
    assert d.incomplete and result.incomplete  # ...so the result says it is incomplete
    assert d.subsets["IQ"]["errored"] == 2
    assert d.sample_errors and "500" in d.sample_errors[0]
    data = result.to_dict()["result"]["iquiz"]
    assert (data["errored"], data["incomplete"]) == (2, True)
    assert d.n == 3 and d.ci95 == [pytest.approx(0.438503, abs=1e-6), 1.0]  # the interval rests on the 3 scored
    assert "| iquiz | accuracy | 1.0000 | [0.4385, 1.0000] | 3/5 | 2 | incomplete |" in \
        (Path(result.output_dir) / "report.md").read_text()


def test_retries_are_bounded_and_recover_from_500s(tmp_path: Path) -> None:
    # The same 2-in-5 fault plan never fails three requests in a row, so 2 retries save every sample.
    rows = [mcq_row(f"[R{i}]", "C") for i in range(5)]
    write_local_copy(tmp_path / "data" / "iquiz", {"IQ": {"test": rows}})
    answers = [{"match": f"[R{i}]", "reply": "答案：C"} for i in range(5)]
    with start_mock(answers=answers, error_500=0.4, fault_cycle=5, **FAST) as mock:
        result = run_eval(EvalConfig(model="m", api_url=mock.base_url, datasets=["iquiz"],
                                     dataset_dir=str(tmp_path / "data"), work_dir=str(tmp_path / "out"),
                                     retries=2, retry_interval=0, preflight=False))
        stats = mock.stats()
    d = result["iquiz"]
    assert (d.scored, d.errored, d.score) == (5, 0, 1.0)
    # One HTTP request per attempt: evalscope's retry loop only, the OpenAI client's own retries are off.
    assert stats["requests"] == 5 + stats["faults"]["error_500"]
    assert stats["faults"]["error_500"] >= 2


def test_eval_batch_size_bounds_the_runs_requests_in_flight_across_datasets(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_local_copy(data / "iquiz", {"IQ": {"test": [mcq_row(f"[B{i}]", "A") for i in range(8)]}})
    write_local_copy(data / "ceval", {"computer_network": {"val": [ceval_row(f"[V{i}]", "A", i) for i in range(8)]}})
    write_local_copy(data / "gsm8k", {"main": {"test": [gsm8k_row(f"[N{i}]", "1 + 1?", 2) for i in range(8)]}})
    no_shots = {"few_shot_num": 0}
    with start_mock(ttft_ms=300, itl_ms=0, output_tokens=4) as mock:
        base = EvalConfig(model="m", api_url=mock.base_url, datasets=["iquiz", "ceval", "gsm8k"],
                          dataset_dir=str(data), dataset_args={"ceval": no_shots, "gsm8k": no_shots},
                          work_dir=str(tmp_path / "out"), preflight=False, report=False, max_workers=3)
        result = run_eval(base.replace(eval_batch_size=4))
        assert [d.scored for d in result.datasets.values()] == [8, 8, 8]
        # three datasets at once, each with evalscope's pool of 4 threads: still 4 in flight, not 12
        assert mock.stats()["max_in_flight"] == 4
        mock.reset()
        run_eval(base)
        assert mock.stats()["max_in_flight"] == 1  # the default: one request at a time across the run, as SPEC says


def test_cancel_keeps_partial_predictions_and_resume_finishes(tmp_path: Path) -> None:
    rows = [mcq_row(f"[K{i}]", "A") for i in range(8)]
    write_local_copy(tmp_path / "data" / "iquiz", {"IQ": {"test": rows}})
    answers = [{"match": f"[K{i}]", "reply": "答案：A" if i % 2 == 0 else "答案：D"} for i in range(8)]
    with start_mock(answers=answers, ttft_ms=400, itl_ms=0) as mock:
        config = EvalConfig(model="m", api_url=mock.base_url, datasets=["iquiz"], dataset_dir=str(tmp_path / "data"),
                            work_dir=str(tmp_path / "out"), preflight=False)

        async def cancel_after_two() -> EvalResult:
            cancel = asyncio.Event()

            def on_event(event: dict[str, Any]) -> None:
                if event["type"] == "progress" and event["done"] >= 2:
                    cancel.set()

            return await run_eval_async(config, progress=on_event, cancel=cancel)

        t0 = time.monotonic()
        first = asyncio.run(cancel_after_two())
        assert time.monotonic() - t0 < 60
        asked_first = mock.stats()["requests"]  # arrivals: a request cut off by the cancel counts too
        assert first.status == "cancelled"
        part = first["iquiz"]
        assert part.status == "cancelled" and part.incomplete and part.score is None
        assert 2 <= part.predicted < 8
        assert all(Path(p).is_file() for p in part.predictions)
        assert not list(Path(first.output_dir).rglob("*.rerun-*"))

        events: list[dict[str, Any]] = []
        second = run_eval(config.replace(use_cache=first.output_dir), progress=events.append)
        asked_second = mock.stats()["requests"] - asked_first
    assert second.status == "completed" and second.output_dir == first.output_dir
    d = second["iquiz"]
    assert (d.requested, d.scored, d.errored) == (8, 8, 0)
    assert d.score == pytest.approx(0.5)
    assert asked_second == 8 - part.predicted  # only the samples that had no prediction were asked again
    assert [e["resume"] for e in events if e["type"] == "status" and e["status"] == "starting"] == [True]


def test_timeout_stops_the_run(tmp_path: Path, suite: Suite) -> None:
    with start_mock(answers=suite.answers, ttft_ms=2000, itl_ms=0) as mock:
        t0 = time.monotonic()
        result = run_eval(EvalConfig(model="m", api_url=mock.base_url, datasets=["iquiz"],
                                     dataset_dir=str(suite.dataset_dir), work_dir=str(tmp_path), timeout=3,
                                     preflight=False))
        elapsed = time.monotonic() - t0
    assert result.status == "timeout" and "timed out after 3 s" in result.error
    assert result["iquiz"].status == "timeout" and result["iquiz"].incomplete
    assert elapsed < 30
    assert json.loads((Path(result.output_dir) / "summary.json").read_text())["status"] == "timeout"


def test_unreachable_endpoint_fails_fast_before_any_output(tmp_path: Path, suite: Suite, unused_port: int) -> None:
    t0 = time.monotonic()
    with pytest.raises(EndpointUnreachable, match=f"127.0.0.1:{unused_port}"):
        run_eval(EvalConfig(model="m", api_url=f"http://127.0.0.1:{unused_port}/v1", datasets=["gsm8k"],
                            dataset_dir=str(suite.dataset_dir), work_dir=str(tmp_path / "out")))
    assert time.monotonic() - t0 < 20
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_wrong_path_fails_the_preflight_with_a_hint(mock: MockHandle, suite: Suite, tmp_path: Path) -> None:
    with pytest.raises(EndpointStatusError, match=r"404.*OpenAI base URL") as info:
        run_eval(EvalConfig(model="m", api_url=mock.root_url + "/not-v1", datasets=["gsm8k"],
                            dataset_dir=str(suite.dataset_dir), work_dir=str(tmp_path)))
    assert info.value.status == 404


def test_datasets_run_concurrently_up_to_max_workers(full_run: tuple[EvalResult, list], mock: MockHandle,
                                                    suite: Suite, tmp_path: Path) -> None:
    def order(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(e["dataset"], e["status"]) for e in events if e["type"] == "status" and e["dataset"]]

    _, events = full_run  # max_workers 4: all three datasets start before any of them ends
    assert [s for _, s in order(events)[:3]] == ["starting"] * 3
    events = []
    result = run_eval(_config(mock, suite, tmp_path, datasets=["iquiz", "ceval"], max_workers=1),
                      progress=events.append)
    assert result.status == "completed"
    assert order(events) == [("iquiz", "starting"), ("iquiz", "completed"), ("ceval", "starting"),
                             ("ceval", "completed")]


def test_run_eval_works_inside_a_running_event_loop(mock: MockHandle, suite: Suite, tmp_path: Path) -> None:
    # Jupyter runs cells inside an event loop: the blocking call must still work there.
    async def cell() -> EvalResult:
        return run_eval(_config(mock, suite, tmp_path, datasets=["iquiz"]))

    result = asyncio.run(cell())
    assert result["iquiz"].score == pytest.approx(0.6)


def _marked_processes(mark: str) -> list[int]:
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"EVALSVC_TEST_MARK={mark}".encode() in environ.read_bytes():
                pids.append(int(environ.parent.name))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_workers_do_not_outlive_a_killed_caller(tmp_path: Path, suite: Suite) -> None:
    # The caller dies without any cleanup (SIGKILL): its zygote and workers must end on their own.
    import os
    import signal
    import subprocess
    import sys
    import uuid

    mark = uuid.uuid4().hex
    with start_mock(answers=suite.answers, ttft_ms=1000, itl_ms=0) as mock:
        script = (f"from evalsvc import EvalConfig, run_eval\n"
                  f"run_eval(EvalConfig(model='m', api_url={mock.base_url!r}, datasets=['iquiz', 'ceval'], "
                  f"dataset_dir={str(suite.dataset_dir)!r}, work_dir={str(tmp_path)!r}))\n")
        caller = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "EVALSVC_TEST_MARK": mark},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(tmp_path.glob("*/*/predictions/*/*.jsonl")):
            time.sleep(0.1)
        assert len(_marked_processes(mark)) >= 4  # caller, zygote, two workers
        caller.send_signal(signal.SIGKILL)
        caller.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _marked_processes(mark):
            time.sleep(0.1)
        assert _marked_processes(mark) == []


class _KeyEchoingServer:
    """An endpoint that refuses every request with 401, quoting the key it was sent (as OpenAI's API does)."""

    def __enter__(self) -> str:
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                body = json.dumps({"error": {"message": f"Incorrect API key provided: {key}. Check it.",
                                             "type": "invalid_request_error"}}).encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_short_key_quoted_by_the_endpoint_is_masked_everywhere(tmp_path: Path) -> None:
    short = "Zq7"  # too short to mask inside other words, still masked where it stands alone
    rows = [mcq_row(f"[Q{i}]", "A") for i in range(2)]
    write_local_copy(tmp_path / "data" / "iquiz", {"IQ": {"test": rows}})
    events: list[dict[str, Any]] = []
    with _KeyEchoingServer() as url:
        with pytest.raises(EndpointStatusError) as info:
            run_eval(EvalConfig(model="m", api_url=url, api_key=short, datasets=["iquiz"],
                                dataset_dir=str(tmp_path / "data"), work_dir=str(tmp_path / "out")))
        assert "401" in str(info.value) and short not in str(info.value)
        result = run_eval(EvalConfig(model="m", api_url=url, api_key=short, datasets=["iquiz"], retries=0,
                                     dataset_dir=str(tmp_path / "data"), work_dir=str(tmp_path / "out"),
                                     preflight=False), progress=events.append)
    d = result["iquiz"]
    assert d.errored == 2 and any("Incorrect API key provided: ***" in e for e in d.sample_errors), d.sample_errors
    assert any("Incorrect API key provided: ***" in str(e.get("message")) for e in events)
    files = [p for p in Path(result.output_dir).rglob("*") if p.is_file()]
    assert any(p.name == "eval_log.log" for p in files) and any(p.name == "worker.log" for p in files)
    for text in [json.dumps(events), repr(result), json.dumps(result.to_dict())] + [p.read_text(errors="replace")
                                                                                    for p in files]:
        assert f"provided: {short}" not in text and f"{short}." not in text


def test_a_run_where_every_sample_failed_is_failed(tmp_path: Path) -> None:
    rows = [mcq_row(f"[E{i}]", "A") for i in range(3)]
    write_local_copy(tmp_path / "data" / "iquiz", {"IQ": {"test": rows}})
    with start_mock(error_500=1.0, **FAST) as mock:
        result = run_eval(EvalConfig(model="m", api_url=mock.base_url, datasets=["iquiz"], retries=0,
                                     dataset_dir=str(tmp_path / "data"), work_dir=str(tmp_path / "out"),
                                     preflight=False))
    d = result["iquiz"]
    assert (d.requested, d.scored, d.errored) == (3, 0, 3)
    assert d.status == "failed" and d.error.startswith("all 3 samples errored")
    assert result.status == "failed" and result.error.startswith("iquiz: all 3 samples errored")
    assert result.incomplete and result.to_dict()["status"] == "failed"
    assert json.loads((Path(result.output_dir) / "summary.json").read_text())["status"] == "failed"


def test_dataset_infos_json_in_a_local_copy_is_left_in_place(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # evalscope deletes <local_path>/dataset_infos.json before loading: it must load a linked copy instead.
    monkeypatch.setenv("EVALSVC_CACHE", str(tmp_path / "cache"))
    rows = [mcq_row(f"[D{i}]", "B") for i in range(4)]
    source = write_local_copy(tmp_path / "data" / "iquiz", {"IQ": {"test": rows}})
    infos = source / "dataset_infos.json"
    infos.write_text(json.dumps({"IQ": {"config_name": "IQ", "splits": {"test": {"num_examples": 4}}}}))
    answers = [{"match": f"[D{i}]", "reply": "答案：B" if i < 3 else "答案：A"} for i in range(4)]
    with start_mock(answers=answers, **FAST) as mock:
        config = EvalConfig(model="m", api_url=mock.base_url, datasets=["iquiz"], dataset_dir=str(tmp_path / "data"),
                            work_dir=str(tmp_path / "out"), preflight=False)
        first = run_eval(config)
        assert infos.is_file(), "dataset_infos.json was deleted from the user's folder"
        assert (first.status, first["iquiz"].score, first["iquiz"].scored) == ("completed", 0.75, 4)
        # A resume sees the same path (evalscope's cache identity includes it), even after the folder changed.
        (source / "notes.txt").write_text("added later")
        second = run_eval(config.replace(use_cache=first.output_dir))
    assert second.status == "completed" and second["iquiz"].score == 0.75
    assert infos.is_file() and sorted(p.name for p in source.iterdir()) == ["IQ", "README.md", "dataset_infos.json",
                                                                             "notes.txt"]


class _SilentServer:
    """Accepts connections and reads requests, but never answers (a hung endpoint)."""

    def __enter__(self) -> str:
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.held: list[socket.socket] = []

        def accept() -> None:
            while True:
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    return
                self.held.append(conn)

        threading.Thread(target=accept, daemon=True).start()
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def __exit__(self, *_: object) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_preflight_is_bounded_by_the_run_timeout_and_says_which_limit(tmp_path: Path, suite: Suite) -> None:
    with _SilentServer() as url:
        t0 = time.monotonic()
        with pytest.raises(EndpointTimeout) as info:
            run_eval(EvalConfig(model="m", api_url=url, datasets=["iquiz"], dataset_dir=str(suite.dataset_dir),
                                work_dir=str(tmp_path / "out"), timeout=3))
        elapsed = time.monotonic() - t0
    assert elapsed < 15  # not the 60 s a preflight request may otherwise take
    message = str(info.value)
    assert "accepted the connection but did not answer the preflight request within 3 s" in message
    assert "the run's timeout" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not Path("/proc/sys/net").exists(), reason="relies on Linux dropping SYNs to a full accept queue")
def test_preflight_connect_limit_is_named(tmp_path: Path, suite: Suite) -> None:
    # A listener whose accept queue is full: the kernel drops new SYNs, so connecting never completes.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.2)
        try:
            with pytest.raises(EndpointTimeout) as info:
                run_eval(EvalConfig(model="m", api_url=f"http://127.0.0.1:{port}/v1", datasets=["iquiz"],
                                    dataset_dir=str(suite.dataset_dir), work_dir=str(tmp_path / "out"),
                                    generation_config={"timeout": 2}))
        finally:
            for filler in fillers:
                filler.close()
    assert "could not connect to" in str(info.value) and "within 2 s" in str(info.value)


def test_cancel_during_the_preflight_returns_promptly(tmp_path: Path, suite: Suite) -> None:
    async def cancelled_after(delay: float, url: str) -> EvalResult:
        cancel = asyncio.Event()
        asyncio.get_running_loop().call_later(delay, cancel.set)
        return await run_eval_async(EvalConfig(model="m", api_url=url, datasets=["iquiz"],
                                               dataset_dir=str(suite.dataset_dir), work_dir=str(tmp_path / "out")),
                                    cancel=cancel)

    with _SilentServer() as url:
        t0 = time.monotonic()
        result = asyncio.run(cancelled_after(1.0, url))
        elapsed = time.monotonic() - t0
    assert elapsed < 12
    assert result.status == "cancelled" and result.output_dir is None and result["iquiz"].status == "cancelled"
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_cancelling_the_calling_task_stops_workers_before_writing_outputs(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    from evalsvc.core.eval._zygote import WorkerHandle

    rows = [mcq_row(f"[C{i}]", "A") for i in range(6)]
    write_local_copy(tmp_path / "data" / "iquiz", {"IQ": {"test": rows}})
    finishes: dict[int, int] = {}
    finish = WorkerHandle.finish

    async def counted_finish(self: WorkerHandle, *args: Any, **kwargs: Any) -> int | None:
        finishes[self.pid] = finishes.get(self.pid, 0) + 1
        return await finish(self, *args, **kwargs)

    monkeypatch.setattr(WorkerHandle, "finish", counted_finish)
    answers = [{"match": f"[C{i}]", "reply": "答案：A"} for i in range(6)]
    with start_mock(answers=answers, ttft_ms=700, itl_ms=0) as mock:
        mark = uuid.uuid4().hex
        monkeypatch.setenv("EVALSVC_TEST_MARK", mark)  # the zygote and its workers inherit it
        config = EvalConfig(model="m", api_url=mock.base_url, datasets=["iquiz"], dataset_dir=str(tmp_path / "data"),
                            work_dir=str(tmp_path / "out"), preflight=False)

        async def main() -> tuple[list[int], list[dict[str, Any]]]:
            loop = asyncio.get_running_loop()
            problems: list[dict[str, Any]] = []
            loop.set_exception_handler(lambda _loop, context: problems.append(context))
            task: asyncio.Task[EvalResult] | None = None

            def on_event(event: dict[str, Any]) -> None:
                if event["type"] == "progress" and event["done"] >= 1 and task is not None:
                    task.cancel()

            task = asyncio.create_task(run_eval_async(config, progress=on_event))
            with pytest.raises(asyncio.CancelledError):
                await task
            alive = _marked_processes(mark)  # right away: nothing may outlive the cancelled call
            await asyncio.sleep(0.5)
            import gc

            gc.collect()  # an unretrieved exception is reported when its future is collected
            await asyncio.sleep(0)
            return alive, problems

        alive, problems = asyncio.run(main())
    assert alive == []
    assert problems == []
    (run_dir,) = (tmp_path / "out").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "cancelled"
    assert summary["result"]["iquiz"]["status"] == "cancelled" and summary["result"]["iquiz"]["predicted"] >= 1
    assert finishes and set(finishes.values()) == {1}
