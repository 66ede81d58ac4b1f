"""The public surface is exactly what evalsvc/__init__.py promises, and every name resolves."""

from __future__ import annotations

import subprocess
import sys

import evalsvc

EXPECTED = {
    "ClientProcessError", "ConfigError", "DatasetError", "DatasetResult", "EndpointError", "EndpointStatusError",
    "EndpointTimeout", "EndpointUnreachable", "EvalConfig", "EvalResult", "EvalsvcError", "MockConfig",
    "PerfConfig", "PerfResult",
    "RunResult", "RunStatus", "__version__", "create_app", "list_benchmarks", "run_eval", "run_eval_async",
    "run_mock", "run_perf", "run_perf_async", "run_service",
    "CapacityConfig", "CapacityResult", "run_capacity", "run_capacity_async",
}


def test_all_is_pinned() -> None:
    assert set(evalsvc.__all__) == EXPECTED


def test_every_public_name_resolves() -> None:
    for name in evalsvc.__all__:
        assert getattr(evalsvc, name) is not None, name


def test_import_is_light() -> None:
    code = ("import sys, evalsvc; "
            "print(sorted(m for m in ('aiohttp', 'evalscope', 'starlette', 'rich') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
