"""Every generation option evalscope accepts is either taken (checked, and sent in each request) or
refused with the reason."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from evalsvc import ConfigError, EvalConfig, run_eval
from evalsvc.core.config import GENERATION_KEYS, GenerationOptions
from tests._evaldata import mcq_row, write_local_copy
from tests._servers import QuietHandler, serve_http

ANSWER = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "答案：A"},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}).encode()


def _config(**generation: Any) -> EvalConfig:
    return EvalConfig(model="m", api_url="http://127.0.0.1:9/v1", datasets=["iquiz"], generation_config=generation)


def test_every_option_of_evalscope_is_taken_or_refused_with_a_reason() -> None:
    from evalscope.api.model.generate_config import GenerateConfig

    refused = GenerationOptions.REFUSED
    for name in GenerateConfig.model_fields:
        assert name in GENERATION_KEYS or name in refused, name
    assert not set(GENERATION_KEYS) & set(refused)
    with pytest.raises(ConfigError, match=r"^generation_config.n: not accepted: evalscope scores only the first"):
        _config(n=4)
    with pytest.raises(ConfigError, match=r"^generation_config.batch_size: not accepted: give eval_batch_size"):
        _config(batch_size=8)


def test_new_options_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"generation_config.repetition_penalty"):
        _config(repetition_penalty=0)
    with pytest.raises(ConfigError, match=r"generation_config.top_logprobs"):
        _config(top_logprobs=21)
    with pytest.raises(ConfigError, match=r"generation_config.logit_bias: must be a token id \(digits\)"):
        _config(logit_bias={"abc": 1})
    with pytest.raises(ConfigError, match=r"generation_config.reasoning_effort: must be one of"):
        _config(reasoning_effort="max")


def test_the_options_reach_each_request(tmp_path: Path) -> None:
    bodies: list[dict[str, Any]] = []
    lock = threading.Lock()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = json.loads(self.read_body())
            with lock:
                bodies.append(body)
            self.answer(ANSWER)

    write_local_copy(tmp_path / "data" / "iquiz", {"IQ": {"test": [mcq_row("[R1]", "A")]}})
    options = {"repetition_penalty": 1.15, "logprobs": True, "top_logprobs": 2, "logit_bias": {"50256": -100},
               "reasoning_effort": "low", "stream": False}
    with serve_http(Handler) as base:
        result = run_eval(EvalConfig(model="m", api_url=f"{base}/v1", datasets=["iquiz"], preflight=False,
                                     dataset_dir=str(tmp_path / "data"), work_dir=str(tmp_path / "out"),
                                     report=False, generation_config=options))
    assert result.status == "completed" and result["iquiz"].score == 1.0
    [body] = bodies
    assert {k: body.get(k) for k in options} == {**options, "logit_bias": {"50256": -100.0}}
    assert body["temperature"] == 0.0 and body["max_tokens"] == 2048
