"""evalsvc.core.jobs without HTTP: path confinement, the SQLite store, the runner with stand-in engines."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any
from collections.abc import Awaitable, Callable

import pytest

from evalsvc.core.config import EvalConfig, PerfConfig
from evalsvc.core.errors import ConfigError
from evalsvc.core.jobs import (
    CANCELLED,
    COMPLETED,
    FAILED,
    INTERRUPTED,
    QUEUED,
    RUNNING,
    Job,
    JobNotFound,
    JobRunner,
    JobStateError,
    JobStore,
    PathPolicy,
    QueueFull,
    RunnerClosed,
    RunnerLocked,
)
from evalsvc.core._secrets import scrub as _scrub
from evalsvc.core._secrets import config_secrets as _secrets_of

FAKES = {"perf": "tests._jobfakes:perf", "eval": "tests._jobfakes:eval"}
URL = "http://127.0.0.1:9/v1/chat/completions"


def perf_config(policy: PathPolicy, **fields: Any) -> PerfConfig:
    config = policy.config_from_body("perf", {"model": "fake", "url": URL, "number": 10, "dataset": "random",
                                              **fields})
    assert isinstance(config, PerfConfig)
    return config


# ---- path policy ----------------------------------------------------------------------------------


def test_work_dir_defaults_to_the_root_and_stays_inside(tmp_path: Path) -> None:
    policy = PathPolicy(tmp_path / "out")
    root = (tmp_path / "out").resolve()
    assert policy.work_dir(None) == str(root)
    assert policy.work_dir("a/b") == str(root / "a" / "b")
    assert policy.work_dir("a/../b") == str(root / "b")
    assert policy.work_dir(".") == str(root)
    for bad in ("..", "../x", "a/../../x", "/etc", "~", "~root/x", ".evalsvc", ".evalsvc/logs", "x\x00y", "", "  "):
        with pytest.raises(ConfigError) as info:
            policy.work_dir(bad)
        assert info.value.field == "work_dir"


def test_symlinks_cannot_lead_out(tmp_path: Path) -> None:
    root = tmp_path / "out"
    root.mkdir()
    os.symlink(tmp_path, root / "up")
    os.symlink(root / "inner", root / "in")
    policy = PathPolicy(root)
    with pytest.raises(ConfigError):
        policy.work_dir("up/x")
    assert policy.work_dir("in/x") == str(root.resolve() / "inner" / "x")


def test_config_from_body_confines_work_dir_and_read_paths(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "gsm8k").mkdir(parents=True)
    policy = PathPolicy(tmp_path / "out", data_roots=(str(data),))
    root = policy.outputs_root
    assert perf_config(policy).work_dir == str(root)  # left out: the root, not root/"outputs"
    assert perf_config(policy, work_dir="outputs").work_dir == str(root / "outputs")
    ok = policy.config_from_body("eval", {"model": "m", "api_url": "http://h/v1", "datasets": ["gsm8k"],
                                          "dataset_dir": str(data), "dataset_args": {"gsm8k": {
                                              "local_path": str(data / "gsm8k"), "dataset_id": "org/name"}}})
    assert isinstance(ok, EvalConfig)
    assert ok.dataset_dir == str(data.resolve())
    assert ok.dataset_args["gsm8k"] == {"local_path": str((data / "gsm8k").resolve()), "dataset_id": "org/name"}
    refused = [
        ("perf", {"model": "m", "url": URL, "dataset": "custom", "dataset_path": "/etc/passwd"}, "dataset_path"),
        ("perf", {"model": "m", "url": URL, "tokenizer_path": "../tok"}, "tokenizer_path"),
        ("eval", {"model": "m", "api_url": "http://h/v1", "datasets": ["gsm8k"], "dataset_dir": "/"}, "dataset_dir"),
        ("eval", {"model": "m", "api_url": "http://h/v1", "datasets": ["gsm8k"], "use_cache": str(data)},
         "use_cache"),
        ("eval", {"model": "m", "api_url": "http://h/v1", "datasets": ["gsm8k"],
                  "dataset_args": {"gsm8k": {"dataset_id": "/etc"}}}, "dataset_args.gsm8k.dataset_id"),
        ("eval", {"model": "m", "api_url": "http://h/v1", "datasets": ["gsm8k"], "work_dir": "/tmp"}, "work_dir"),
        ("train", {}, "kind"),
    ]
    for kind, body, field in refused:
        with pytest.raises(ConfigError) as info:
            policy.config_from_body(kind, body)
        assert info.value.field == field


# ---- store ----------------------------------------------------------------------------------------


def _job(job_id: str, state: str, created: str, result: dict[str, Any] | None = None) -> Job:
    return Job(id=job_id, kind="perf", state=state, created_at=created, config={"model": "m", "api_key": "***"},
               result=result)


def test_store_round_trip_list_and_recover(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = JobStore(path)
    store.put(_job("a", COMPLETED, "2024-01-01T00:00:01Z", result={"results": {"k": {"metrics": {"x": 1.5}}}}))
    store.put(_job("b", RUNNING, "2024-01-01T00:00:02Z"))
    store.put(_job("c", QUEUED, "2024-01-01T00:00:03Z"))
    store.put(_job("d", FAILED, "2024-01-01T00:00:04Z"))
    assert store.get("a") == _job("a", COMPLETED, "2024-01-01T00:00:01Z",
                                  result={"results": {"k": {"metrics": {"x": 1.5}}}})
    assert store.get("zzz") is None
    assert [j.id for j in store.list()] == ["d", "c", "b", "a"]
    assert [j.summary()["has_result"] for j in store.list()] == [False, False, False, True]
    assert [j.id for j in store.list(state=RUNNING)] == ["b"]
    assert [j.id for j in store.list(limit=2, offset=1)] == ["c", "b"]
    assert store.count() == 4 and store.count(state=FAILED) == 1
    store.close()

    reopened = JobStore(path)
    assert sorted(reopened.recover()) == ["b", "c"]
    states = {j.id: (j.state, j.error) for j in reopened.list()}
    assert states["b"][0] == states["c"][0] == INTERRUPTED and states["b"][1]["type"] == "Interrupted"
    assert states["a"] == (COMPLETED, None) and states["d"][0] == FAILED
    assert reopened.get("a").result == {"results": {"k": {"metrics": {"x": 1.5}}}}  # type: ignore[union-attr]
    assert reopened.recover() == []
    reopened.close()


# ---- runner ---------------------------------------------------------------------------------------


def run(tmp_path: Path, body: Callable[[JobRunner, PathPolicy], Awaitable[Any]], **options: Any) -> Any:
    policy = PathPolicy(tmp_path / "out")
    options.setdefault("targets", FAKES)
    options.setdefault("cancel_grace_s", 5.0)

    async def main() -> Any:
        runner = JobRunner(policy, **options)
        await runner.start()
        try:
            return await body(runner, policy)
        finally:
            await runner.close()

    return asyncio.run(main())


def test_runner_completes_and_persists(tmp_path: Path) -> None:
    async def body(runner: JobRunner, policy: PathPolicy) -> None:
        job = runner.submit("perf", perf_config(policy, api_key="sk-test-123456"))
        assert job.config["api_key"] == "***"
        done = await runner.wait(job.id)
        assert done.state == COMPLETED and done.result is not None
        assert done.result["results"]["parallel_1_number_10"]["metrics"]["requests_total"] == 10
        assert done.progress["parallel_1_number_10"]["done"] == 10
        stored = await runner.get(job.id)
        assert stored.state == COMPLETED and stored.result == done.result
        with pytest.raises(JobNotFound):
            await runner.get("nope")
        with pytest.raises(JobStateError):
            await runner.cancel(job.id)

    run(tmp_path, body)
    raw = b"".join(p.read_bytes() for p in (tmp_path / "out" / ".evalsvc").glob("jobs.sqlite3*"))
    assert b"sk-test-123456" not in raw and raw  # persisted, without the key
    rows = sqlite3.connect(tmp_path / "out" / ".evalsvc" / "jobs.sqlite3").execute("SELECT state FROM jobs").fetchall()
    assert rows == [(COMPLETED,)]


def test_runner_admission_queue_and_limits(tmp_path: Path) -> None:
    async def body(runner: JobRunner, policy: PathPolicy) -> None:
        first = runner.submit("perf", perf_config(policy, model="fake-slow"))
        second = runner.submit("perf", perf_config(policy, model="fake-slow"))
        assert (first.state, second.state) == (RUNNING, QUEUED)
        with pytest.raises(QueueFull) as info:
            runner.submit("perf", perf_config(policy))
        assert "queue is full (1 jobs waiting, limit 1)" in str(info.value)
        assert runner.stats()["queued"] == 1 and runner.stats()["running_by_kind"]["perf"] == 1
        await runner.cancel(second.id)
        assert second.state == CANCELLED and second.started_at is None
        await runner.cancel(first.id)
        assert (await runner.wait(first.id)).state == CANCELLED

    run(tmp_path, body, max_queued=1)


def test_close_interrupts_running_jobs_and_refuses_new_ones(tmp_path: Path) -> None:
    policy = PathPolicy(tmp_path / "out")

    async def main() -> None:
        runner = JobRunner(policy, targets=FAKES, cancel_grace_s=5.0)
        await runner.start()
        job = runner.submit("perf", perf_config(policy, model="fake-slow"))
        while not job.progress:
            await asyncio.sleep(0.05)
        await runner.close()
        assert job.state == INTERRUPTED and job.result is not None and job.result["status"] == "interrupted"
        with pytest.raises(RunnerClosed):
            runner.submit("perf", perf_config(policy))

    asyncio.run(main())
    store = JobStore(policy.state_dir / "jobs.sqlite3")
    assert [(j.state, j.summary()["has_result"]) for j in store.list()] == [(INTERRUPTED, True)]
    store.close()


def test_one_runner_per_outputs_root(tmp_path: Path) -> None:
    async def body(runner: JobRunner, policy: PathPolicy) -> None:
        other = JobRunner(policy)
        with pytest.raises(RunnerLocked):
            other.check_unlocked()
        with pytest.raises(RunnerLocked):
            await other.start()

    run(tmp_path, body)
    JobRunner(PathPolicy(tmp_path / "out")).check_unlocked()  # released at close


def test_secrets_are_scrubbed_from_everything_kept() -> None:
    config = PerfConfig(model="m", url=URL, api_key="sk-abcdef", headers={"X-Api-Key": "hdr-secret",
                                                                         "Authorization": "Bearer tok-123"})
    secrets = _secrets_of(config)
    assert set(secrets) >= {"sk-abcdef", "hdr-secret", "Bearer tok-123", "tok-123"}
    dirty = {"error": "bad key sk-abcdef", "list": ["hdr-secret!", 3], "nested": {"a": "Bearer tok-123"}}
    assert _scrub(dirty, secrets) == {"error": "bad key ***", "list": ["***!", 3], "nested": {"a": "***"}}
    assert _secrets_of(EvalConfig(model="m", api_url="http://h/v1", datasets=["gsm8k"])) == ()


def test_eval_generation_config_extra_body_secrets_are_hidden() -> None:
    # EvalConfig's extra_body sits in generation_config: its secret-named values are secrets like
    # PerfConfig.extra_body's (hidden in what a job keeps, masked wherever a run quotes them).
    config = EvalConfig(model="m", api_url="http://h/v1", datasets=["gsm8k"], api_key="sk-evalkey1",
                        generation_config={"temperature": 0.5, "extra_body": {"user_token": "GENSECRET99", "top_k": 3}})
    shown = config.to_dict(redact=True)["generation_config"]
    assert shown["extra_body"] == {"user_token": "***", "top_k": 3} and shown["temperature"] == 0.5
    assert "GENSECRET99" not in repr(config)
    assert set(_secrets_of(config)) == {"sk-evalkey1", "GENSECRET99"}
    for placeholder in ("EMPTY", " EMPTY ", ""):  # "no key" is no secret, and is shown as it is
        blank = EvalConfig(model="m", api_url="http://h/v1", datasets=["gsm8k"], api_key=placeholder)
        assert _secrets_of(blank) == ()
        assert blank.to_dict(redact=True)["api_key"] == placeholder


def test_a_stop_that_surfaces_as_an_error_is_still_a_stop(tmp_path: Path) -> None:
    async def body(runner: JobRunner, policy: PathPolicy) -> None:
        cancelled = runner.submit("eval", policy.config_from_body(
            "eval", {"model": "fake-fragile", "api_url": "http://127.0.0.1:9/v1", "datasets": ["gsm8k"]}))
        while not cancelled.progress:  # the worker is in its run
            await asyncio.sleep(0.05)
        await runner.cancel(cancelled.id)
        done = await runner.wait(cancelled.id)
        assert done.state == CANCELLED and done.error is not None and done.error["type"] == "Cancelled"
        assert "connection pool closed" in done.error["detail"]
        return None

    run(tmp_path, body)

    policy = PathPolicy(tmp_path / "out2")

    async def shutdown() -> None:
        runner = JobRunner(policy, targets=FAKES, cancel_grace_s=5.0)
        await runner.start()
        job = runner.submit("perf", perf_config(policy, model="fake-fragile"))
        while not job.progress:
            await asyncio.sleep(0.05)
        await runner.close()
        assert job.state == INTERRUPTED and job.error is not None and job.error["type"] == "Interrupted"

    asyncio.run(shutdown())


def test_read_paths_never_reach_the_service_state_dir(tmp_path: Path) -> None:
    # Even with a data root that contains the outputs root, the job database and logs stay private.
    policy = PathPolicy(tmp_path / "out", data_roots=(str(tmp_path),))
    state = policy.state_dir
    (state / "logs").mkdir(parents=True)
    (state / "jobs.sqlite3").write_bytes(b"SQLite format 3\x00")
    (state / "logs" / "j.log").write_text("secret log\n")
    os.symlink(state, policy.outputs_root / "innocent")
    eval_base = {"model": "m", "api_url": "http://h/v1", "datasets": ["gsm8k"]}
    private = [".evalsvc/jobs.sqlite3", str(state / "jobs.sqlite3"), "innocent/jobs.sqlite3", ".evalsvc/logs/j.log",
               "logs/../.evalsvc/logs", str(state)]
    for value in private:
        cases = [
            ("perf", {"model": "m", "url": URL, "dataset": "line_by_line", "dataset_path": value}, "dataset_path"),
            ("perf", {"model": "m", "url": URL, "tokenizer_path": value}, "tokenizer_path"),
            ("eval", {**eval_base, "dataset_dir": value}, "dataset_dir"),
            ("eval", {**eval_base, "use_cache": value}, "use_cache"),
            ("eval", {**eval_base, "dataset_args": {"gsm8k": {"local_path": value}}}, "dataset_args.gsm8k.local_path"),
            ("eval", {**eval_base, "dataset_args": {"gsm8k": {"dataset_id": value}}}, "dataset_args.gsm8k.dataset_id"),
        ]
        for kind, body, field in cases:
            with pytest.raises(ConfigError) as info:
                policy.config_from_body(kind, body)
            assert info.value.field == field, (value, field)
            assert "private" in info.value.reason, info.value.reason
    # the outputs root itself and runs inside it stay readable
    (policy.outputs_root / "prompts.txt").write_text("hi\n")
    ok = policy.config_from_body("perf", {"model": "m", "url": URL, "dataset": "line_by_line",
                                          "dataset_path": "prompts.txt"})
    assert ok.dataset_path == str(policy.outputs_root / "prompts.txt")


def test_dataset_ids_that_name_files_are_confined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # evalscope loads a dataset_id (and HF loads an hf_dataset_id) from disk whenever it exists there.
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "test.jsonl").write_text('{"question": "private"}\n')
    policy = PathPolicy(tmp_path / "out")
    root = policy.outputs_root
    (root / "mine" / "gsm8k").mkdir(parents=True)
    os.symlink(secret, root / "link")
    monkeypatch.chdir(tmp_path)  # "secret" exists relative to the service's cwd
    base = {"model": "m", "api_url": "http://h/v1", "datasets": ["gsm8k"]}

    def confine(key: str, value: str) -> str:
        config = policy.config_from_body("eval", {**base, "dataset_args": {"gsm8k": {key: value}}})
        assert isinstance(config, EvalConfig)
        return str(config.dataset_args["gsm8k"][key])

    for key in ("dataset_id", "hf_dataset_id"):
        for bad in ("link", "link/test.jsonl", "../secret", "mine/../../secret", str(secret), "~",
                    ".evalsvc", "mine/../.evalsvc/logs"):
            with pytest.raises(ConfigError) as info:
                confine(key, bad)
            assert info.value.field == f"dataset_args.gsm8k.{key}", bad
        assert confine(key, "org/name") == "org/name"  # hub ids stay hub ids
        assert confine(key, "AI-ModelScope/gsm8k") == "AI-ModelScope/gsm8k"
        assert confine(key, "mine/gsm8k") == str(root / "mine" / "gsm8k")  # a local copy: its absolute path
        # exists only relative to the service's cwd: kept, and the worker does not run there (see below)
        assert confine(key, "secret") == "secret"


def test_job_workers_run_in_the_outputs_root(tmp_path: Path) -> None:
    async def body(runner: JobRunner, policy: PathPolicy) -> None:
        job = runner.submit("eval", policy.config_from_body(
            "eval", {"model": "fake-cwd", "api_url": "http://127.0.0.1:9/v1", "datasets": ["gsm8k"]}))
        done = await runner.wait(job.id)
        assert done.state == COMPLETED and done.result is not None
        assert done.result["cwd"] == str(policy.outputs_root)

    run(tmp_path, body)


def test_url_credentials_extra_body_and_short_keys_are_secrets() -> None:
    query = "?model=x&api_key=QKEYQKEY&sig=S%2FIG12345"
    perf = PerfConfig(model="m", url="http://user:PASSW0RDX@127.0.0.1:9/v1/chat/completions" + query,
                      extra_body={"user_token": "XBODYSECRETX", "opts": {"password": "NESTEDPW1"}, "note": "fine"})
    secrets = set(_secrets_of(perf))
    assert secrets >= {"user:PASSW0RDX", "PASSW0RDX", "QKEYQKEY", "S%2FIG12345", "S/IG12345", "XBODYSECRETX",
                       "NESTEDPW1"}
    assert not secrets & {"user", "x", "m", "fine"}  # a user name, a model, harmless values stay readable
    said = f"cannot connect to {perf.url}: sent {perf.extra_body}"
    scrubbed = _scrub(said, _secrets_of(perf))
    for secret in ("PASSW0RDX", "QKEYQKEY", "S%2FIG12345", "XBODYSECRETX", "NESTEDPW1"):
        assert secret not in scrubbed
    assert "127.0.0.1:9/v1/chat/completions" in scrubbed and "'note': 'fine'" in scrubbed

    token_user = PerfConfig(model="m", url="https://TOKENONLY99@example.com/v1/chat/completions")
    assert "TOKENONLY99" in _secrets_of(token_user)

    # A short key is still a secret; it is scrubbed where it stands alone, not inside other words or paths.
    short = EvalConfig(model="m", api_url="http://h/v1", datasets=["gsm8k"], api_key="k9")
    assert _scrub({"error": "bad key k9 (k9); see /tmp/k9x/out", "n": 3}, _secrets_of(short)) == {
        "error": "bad key *** (***); see /tmp/k9x/out", "n": 3}
    placeholder = EvalConfig(model="m", api_url="http://h/v1", datasets=["gsm8k"], api_key="test")
    assert _scrub("/tmp/pytest-1/test_x/out: key test refused", _secrets_of(placeholder)) == \
        "/tmp/pytest-1/test_x/out: key *** refused"


def test_stored_config_hides_extra_body_secrets(tmp_path: Path) -> None:
    async def body(runner: JobRunner, policy: PathPolicy) -> None:
        job = runner.submit("perf", perf_config(policy, extra_body={"user_token": "XBODYSECRETX", "top_k": 5},
                                                url="http://u:PASSW0RDX@127.0.0.1:9/v1/chat/completions?key=QK99"))
        assert job.config["extra_body"] == {"user_token": "***", "top_k": 5}
        assert job.config["url"] == "http://***@127.0.0.1:9/v1/chat/completions?key=***"
        await runner.wait(job.id)

    run(tmp_path, body)
    raw = b"".join(p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file())
    for secret in (b"XBODYSECRETX", b"PASSW0RDX", b"QK99"):
        assert secret not in raw


def test_workers_are_launched_off_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalsvc.core.jobs import _supervisor as _runner

    real_launch = _runner._launch
    threads: list[str] = []
    gate = threading.Event()

    def gated_launch(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        assert gate.wait(10), "the launch blocked the event loop"  # a slow fork: the loop serves meanwhile
        return real_launch(*args)

    monkeypatch.setattr(_runner, "_launch", gated_launch)

    async def body(runner: JobRunner, policy: PathPolicy) -> None:
        loop_thread = threading.current_thread().name
        first = runner.submit("perf", perf_config(policy))
        assert first.state == RUNNING and runner.stats()["running"] == 1
        await asyncio.sleep(0.1)  # the loop runs while the worker is being started
        gate.set()
        assert (await runner.wait(first.id)).state == COMPLETED
        # cancelled while its worker is still being started: the worker is stopped once it exists
        gate.clear()
        second = runner.submit("perf", perf_config(policy, model="fake-slow"))
        await asyncio.sleep(0.1)
        await runner.cancel(second.id)
        gate.set()
        done = await runner.wait(second.id)
        assert done.state == CANCELLED and done.error is not None and done.error["type"] == "Cancelled"
        assert len(threads) == 2 and loop_thread not in threads
        assert runner.stats()["running"] == 0

    run(tmp_path, body)


def test_state_files_are_private(tmp_path: Path) -> None:
    async def body(runner: JobRunner, policy: PathPolicy) -> None:
        job = runner.submit("perf", perf_config(policy))
        await runner.wait(job.id)

    run(tmp_path, body)
    state = tmp_path / "out" / ".evalsvc"
    files = [p for p in state.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"jobs.sqlite3", "service.lock"} and any(p.suffix == ".log" for p in files)
    for path in files:
        assert path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))
    assert state.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(("status", "stop_reason", "state"), [
    ("completed", None, "completed"), ("incomplete", None, "completed"), ("failed", None, "failed"),
    ("timeout", None, "failed"), ("cancelled", "cancel", "cancelled"), ("interrupted", "shutdown", "interrupted"),
    ("interrupted", "cancel", "cancelled"),
])
def test_every_run_status_maps_to_a_job_state(status: str, stop_reason: str | None, state: str) -> None:
    from evalsvc.core.jobs._outcome import job_outcome
    from evalsvc.core.status import JobState, RunStatus

    assert {s.value for s in RunStatus} >= {status}
    outcome = job_outcome({"type": "result", "status": status, "data": {"x": 1}}, 0, stop_reason, False)
    assert outcome.state == JobState(state) and outcome.result == {"x": 1}
    assert (outcome.error is None) == (state == "completed")


def test_a_worker_that_dies_without_a_word_fails_its_job_saying_how() -> None:
    from evalsvc.core.jobs._outcome import job_outcome

    outcome = job_outcome(None, -9, None, False)
    assert outcome.state == "failed" and outcome.error is not None
    assert outcome.error["type"] == "WorkerDied"
    assert outcome.error["message"] == "the worker process ended (killed by SIGKILL) without a result"
    assert job_outcome(None, -9, "cancel", False).state == "cancelled"  # told to stop: not a failure
