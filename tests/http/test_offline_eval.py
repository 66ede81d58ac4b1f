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
