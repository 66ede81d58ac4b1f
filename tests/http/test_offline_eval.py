"""Offline, an eval request without local copies is answered at once, in English, naming dataset_dir (9.9)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from evalsvc.core.config import EvalConfig
from evalsvc.core.errors import ConfigError
from evalsvc.core.eval import _plan
from tests.http._live import service_process

CLOSED_HUB = "127.0.0.1:1"  # nothing listens there: what an offline machine sees of the hub


def test_the_library_names_dataset_dir_when_the_hub_cannot_be_reached(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSCOPE_DOMAIN", CLOSED_HUB)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "empty-cache"))
    config = EvalConfig(model="m", api_url="http://127.0.0.1:9/v1", datasets=["gsm8k"])
    with pytest.raises(ConfigError) as info:
        _plan.check_hub(_plan.plan_eval(config))
    assert info.value.field == "dataset_dir"
    assert "gsm8k has no local copy" in str(info.value) and "--dataset-dir" in str(info.value)
    # a dataset already in the ModelScope cache is not refused
    (tmp_path / "empty-cache" / "datasets" / "AI-ModelScope" / "gsm8k").mkdir(parents=True)
    _plan.check_hub(_plan.plan_eval(config))


def test_the_service_answers_400_at_once(tmp_path: Path, mock_server: Any) -> None:
    env = {"MODELSCOPE_DOMAIN": CLOSED_HUB, "MODELSCOPE_CACHE": str(tmp_path / "empty-cache"),
           "EVALSVC_DATASET_DIR": ""}
    with service_process(tmp_path / "out", env=env) as live:
        started = time.monotonic()
        r = live.client.post("/api/v1/eval", json={"model": "mock-model", "api_url": mock_server.base_url,
                                                   "datasets": ["gsm8k"], "limit": 2})
        elapsed = time.monotonic() - started
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert "dataset_dir" in message and "--dataset-dir" in message
    assert message.isascii() and "\n" not in message
    assert elapsed < 15, elapsed


def test_the_cli_says_it_in_one_line_and_exits_2(tmp_path: Path, mock_server: Any) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "MODELSCOPE_DOMAIN": CLOSED_HUB, "MODELSCOPE_CACHE": str(tmp_path / "empty-cache")}
    out = subprocess.run([sys.executable, "-m", "evalsvc", "eval", "--model", "mock-model", "--api-url",
                          mock_server.base_url, "-d", "gsm8k", "--work-dir", str(tmp_path / "out")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("ConfigError: dataset_dir: gsm8k has no local copy and the dataset hub 127.0.0.1:1 "
                           "cannot be reached (offline?): give dataset_dir (--dataset-dir)")
    assert "`evalsvc datasets prepare gsm8k --to DIR`" in line and line.isascii()
    assert not (tmp_path / "out").exists()  # nothing was started or written
