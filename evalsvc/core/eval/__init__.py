"""Accuracy evaluation through evalscope's benchmark catalogue, one spawned worker per dataset.

    from evalsvc import run_eval, EvalConfig
    result = run_eval(EvalConfig(model="m", api_url="http://127.0.0.1:8000/v1", datasets=["gsm8k"], limit=10))
    result["gsm8k"].score, result.to_dict()

Importing this package does not import evalscope: only the workers do.
"""

from __future__ import annotations

from ._catalogue import list_benchmarks
from ._plan import plan_eval
from ._result import DatasetResult, EvalResult
from ._run import run_eval, run_eval_async

__all__ = ["DatasetResult", "EvalResult", "list_benchmarks", "plan_eval", "run_eval", "run_eval_async"]
