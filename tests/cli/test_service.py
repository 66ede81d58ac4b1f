"""`evalsvc service`: flags and environment reach run_service; the exposure warning; bad input exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import uvicorn

import evalsvc.http
from evalsvc.cli import main
from evalsvc.core.jobs._limits import ServiceLimits


def _call(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    seen: dict[str, Any] = {}

    def fake_run_service(*args: Any, **kwargs: Any) -> None:
        seen["args"], seen["kwargs"] = args, kwargs

    monkeypatch.setattr(evalsvc.http, "run_service", fake_run_service)
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    return seen["args"], seen["kwargs"]


def test_flags_reach_run_service(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("EVALSVC_TOKEN", "EVALSVC_TOKEN_FILE", "EVALSVC_OUTPUTS", "EVALSVC_MAX_QUEUE",
                "EVALSVC_EVAL_CONCURRENCY", "EVALSVC_DATASET_DIR"):
        monkeypatch.delenv(var, raising=False)
    args, kwargs = _call(monkeypatch, ["service"])
    assert args == ("0.0.0.0", 9000, False)
    assert kwargs == {"outputs": None, "token": None, "data_roots": None, "dataset_dir": None, "max_queued": None,
                      "eval_concurrency": None, "cancel_grace_s": 15.0, "allow_origins": None,
                      "header_timeout_s": 10.0, "max_connections": None, "limits": ServiceLimits(),
                      "allow_targets": None, "keep_days": None, "log_format": "text", "metrics_public": False,
                      "ray_address": None}
    args, kwargs = _call(monkeypatch, ["service", "--host", "127.0.0.1", "--port", "9100", "--debug", "--token", "t",
                                       "--outputs", str(tmp_path), "--data-root", "/data/a", "--data-root", "/data/b",
                                       "--dataset-dir", "/data/bench",
                                       "--max-queue", "3", "--eval-concurrency", "4", "--cancel-grace", "2",
                                       "--allow-origin", "https://ui.example.org", "--header-timeout", "5",
                                       "--max-connections", "50", "--max-number", "10", "--max-job-seconds", "60",
                                       "--allow-target", "10.0.0.0/8", "--allow-target", "llm.internal",
                                       "--keep-days", "7", "--log-format", "json", "--metrics-public",
                                       "--ray-address", "10.0.0.9:6379"])
    assert args == ("127.0.0.1", 9100, True)
    assert kwargs == {"outputs": str(tmp_path), "token": "t", "data_roots": ("/data/a", "/data/b"),
                      "dataset_dir": "/data/bench", "max_queued": 3,
                      "eval_concurrency": 4, "cancel_grace_s": 2.0, "allow_origins": ("https://ui.example.org",),
                      "header_timeout_s": 5.0, "max_connections": 50,
                      "limits": ServiceLimits(max_number=10, max_job_seconds=60.0),
                      "allow_targets": ("10.0.0.0/8", "llm.internal"), "keep_days": 7.0, "log_format": "json",
                      "metrics_public": True, "ray_address": "10.0.0.9:6379"}


def test_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EVALSVC_TOKEN", "from-env")
    monkeypatch.setenv("EVALSVC_OUTPUTS", str(tmp_path))
    monkeypatch.setenv("EVALSVC_MAX_QUEUE", "7")
    _, kwargs = _call(monkeypatch, ["service"])
    assert (kwargs["token"], kwargs["outputs"], kwargs["max_queued"]) == ("from-env", str(tmp_path), 7)


def test_bad_flag_is_one_line_exit_2() -> None:
    r = subprocess.run([sys.executable, "-m", "evalsvc", "service", "--port", "nope"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "--port" in r.stderr


def test_unknown_log_format_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["service", "--log-format", "xml", "--outputs", str(tmp_path / "out")])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "log_format" in err and "text, json" in err and "'xml'" in err


@pytest.mark.parametrize(("host", "token", "warned"), [
    ("0.0.0.0", None, True), ("::", None, True), ("10.1.2.3", None, True), ("0.0.0.0", "tok-XYZ", False),
    ("127.0.0.1", None, False), ("localhost", None, False), ("::1", None, False),
])
def test_warning_when_exposed_without_token(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path, host: str, token: str | None, warned: bool) -> None:
    monkeypatch.delenv("EVALSVC_TOKEN", raising=False)
    served: dict[str, Any] = {}

    def fake_run(self: uvicorn.Server, sockets: Any = None) -> None:
        served["host"], served["port"] = self.config.host, self.config.port

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    evalsvc.http.run_service(host, 9123, outputs=str(tmp_path / "out"), token=token)
    assert served == {"host": host, "port": 9123}
    err = capsys.readouterr().err
    assert ("WARNING: evalsvc service listens on" in err) is warned
    assert "outputs root " + str((tmp_path / "out").resolve()) in err
    if token:
        assert token not in err
