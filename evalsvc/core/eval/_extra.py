"""Whether evaluation is installed: evalscope comes with the `eval` extra, not with `pip install evalsvc`.

Load testing, the service and the mock need none of it; evaluation checks here before doing anything,
so a perf-only install answers `evalsvc eval`, `run_eval`, `evalsvc benchmarks` and an eval request with
one line saying what to install, never a traceback from a worker process.
"""

from __future__ import annotations

import functools
import importlib.util

from ..errors import MissingExtra

EXTRA = "eval"
MESSAGE = "evaluation needs the eval extra: pip install 'evalsvc[eval]'"


@functools.lru_cache(maxsize=1)
def eval_installed() -> bool:
    """True when evalscope can be imported (checked without importing it: that takes seconds)."""
    try:
        return importlib.util.find_spec("evalscope") is not None
    except (ImportError, ValueError):  # a finder refused it, or sys.modules holds None for it
        return False


def require_eval() -> None:
    """Raise MissingExtra unless evaluation is installed."""
    if not eval_installed():
        raise MissingExtra(EXTRA, MESSAGE)
