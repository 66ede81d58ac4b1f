"""The HTTP service: `create_app()` (an ASGI app) and `run_service(host, port, debug)` (uvicorn).

Endpoints are listed in SPEC §5 and served as OpenAPI at /openapi.json. Handlers parse JSON into the
library's configs and hand them to `evalsvc.core.jobs`; no evaluation or measurement logic lives here.
"""

from ._app import (
    ENV_DATA_ROOTS,
    ENV_DATASET_DIR,
    ENV_EVAL_CONCURRENCY,
    ENV_MAX_QUEUE,
    ENV_OUTPUTS,
    ENV_TOKEN,
    ServiceSettings,
    create_app,
)
from ._server import DEFAULT_HOST, DEFAULT_PORT, run_service

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ENV_DATASET_DIR",
    "ENV_DATA_ROOTS",
    "ENV_EVAL_CONCURRENCY",
    "ENV_MAX_QUEUE",
    "ENV_OUTPUTS",
    "ENV_TOKEN",
    "ServiceSettings",
    "create_app",
    "run_service",
]
