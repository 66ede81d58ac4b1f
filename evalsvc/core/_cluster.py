"""Running on a Ray cluster (the optional `ray` extra): is Ray installed, and the one connection to a cluster.

`ray_address` (a PerfConfig and EvalConfig field) names the cluster: "auto" (the cluster this machine belongs
to, as `ray start` left it), "ray://host:port" (Ray Client) or "host:port" (the head node's GCS address).
Without the extra, a run naming a cluster (and `evalsvc service --ray-address`) is refused with one line
saying what to install (CLI exit 2), before anything is read, sent or written. Ray is imported only when a
run actually uses a cluster: `import ray` costs seconds.

Every node needs evalsvc installed (with its extras for what runs there); an actor reports the version it
imported, and a different one than the driver's is refused before the run starts.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import threading
from typing import Any

from .errors import ClientStartError, MissingExtra

EXTRA = "ray"
MESSAGE = "running on a Ray cluster (ray_address) needs the ray extra: pip install 'evalsvc[ray]'"
ADDRESS_PATTERN = r"^(auto|ray://[^\s/:]+:[0-9]{1,5}|[^\s/:]+:[0-9]{1,5})$"
ADDRESS_REASON = 'must be "auto", "ray://host:port" or "host:port" (the head node\'s address)'

_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def ray_installed() -> bool:
    """True when Ray can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # a finder refused it, or sys.modules holds None for it
        return False


def require_ray() -> None:
    """Raise MissingExtra unless Ray is installed."""
    if not ray_installed():
        raise MissingExtra(EXTRA, MESSAGE)


def connect(address: str) -> Any:
    """The `ray` module, connected to the cluster at `address` (once per process; a process already connected,
    e.g. by the caller's own `ray.init`, is used as it is).

    Raises:
        MissingExtra: Ray is not installed.
        ClientStartError: the cluster cannot be reached.
    """
    require_ray()
    import ray

    with _lock:
        if not ray.is_initialized():
            try:
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING,
                         configure_logging=False, include_dashboard=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ClientStartError(f"cannot connect to the Ray cluster at {address}: {exc}") from None
    return ray



def error_line(exc: BaseException) -> str:
    """One line for an error Ray raised (its messages run over many lines): the type and the first line."""
    text = str(exc).strip() or type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]
