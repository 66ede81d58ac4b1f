"""The simulated endpoint (`evalsvc mock`): an OpenAI-compatible server with set delays, exact faults
and deterministic answers, for trying evalsvc and for testing it over real HTTP.

    from evalsvc.core.mock import MockConfig, run_mock
    run_mock(MockConfig(port=8000, ttft_ms=200, itl_ms=20, error_500=0.1))
"""

from __future__ import annotations

from ._config import MockConfig
from ._faults import FAULT_KINDS, FaultPlan
from ._server import FAULT_HEADER, MockServer, create_mock_app, run_mock

__all__ = ["FAULT_HEADER", "FAULT_KINDS", "FaultPlan", "MockConfig", "MockServer", "create_mock_app", "run_mock"]
