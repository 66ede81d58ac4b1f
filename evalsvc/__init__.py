"""evalsvc: evaluate and load-test LLM endpoints.

    from evalsvc import run_perf, PerfConfig
    result = run_perf(PerfConfig(model="m", url="http://127.0.0.1:8000/v1/chat/completions", dataset="random"))

Heavy modules (aiohttp, evalscope, starlette) load on first use, so `import evalsvc` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core.config import CapacityConfig, EvalConfig, PerfConfig
from .core.errors import (
    ClientProcessError,
    ConfigError,
    DatasetError,
    EndpointError,
    EndpointStatusError,
    EndpointTimeout,
    EndpointUnreachable,
    EvalsvcError,
)
from .core.status import RunStatus

__version__ = "0.1.0"

_LAZY = {
    "run_perf": "evalsvc.core.perf",
    "run_perf_async": "evalsvc.core.perf",
    "PerfResult": "evalsvc.core.perf",
    "RunResult": "evalsvc.core.perf",
    "run_eval": "evalsvc.core.eval",
    "run_eval_async": "evalsvc.core.eval",
    "EvalResult": "evalsvc.core.eval",
    "DatasetResult": "evalsvc.core.eval",
    "list_benchmarks": "evalsvc.core.eval",
    "create_app": "evalsvc.http",
    "run_service": "evalsvc.http",
    "run_mock": "evalsvc.core.mock",
    "run_capacity": "evalsvc.core.capacity",
    "run_capacity_async": "evalsvc.core.capacity",
    "CapacityResult": "evalsvc.core.capacity",
    "MockConfig": "evalsvc.core.mock",
}

__all__ = [
    "CapacityConfig",
    "CapacityResult",
    "ClientProcessError",
    "ConfigError",
    "DatasetError",
    "DatasetResult",
    "EndpointError",
    "EndpointStatusError",
    "EndpointTimeout",
    "EndpointUnreachable",
    "EvalConfig",
    "EvalResult",
    "EvalsvcError",
    "MockConfig",
    "PerfConfig",
    "PerfResult",
    "RunResult",
    "RunStatus",
    "__version__",
    "create_app",
    "list_benchmarks",
    "run_capacity",
    "run_capacity_async",
    "run_eval",
    "run_eval_async",
    "run_mock",
    "run_perf",
    "run_perf_async",
    "run_service",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evalsvc' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from .core.capacity import CapacityResult, run_capacity, run_capacity_async
    from .core.eval import DatasetResult, EvalResult, list_benchmarks, run_eval, run_eval_async
    from .core.mock import MockConfig, run_mock
    from .core.perf import PerfResult, RunResult, run_perf, run_perf_async
    from .http import create_app, run_service
