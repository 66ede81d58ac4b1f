"""Where evalsvc keeps files that are not a run's outputs."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "EVALSVC_CACHE_DIR"


def cache_dir() -> Path:
    """evalsvc's cache folder: $EVALSVC_CACHE_DIR, else $XDG_CACHE_HOME/evalsvc, else ~/.cache/evalsvc.

    Every cache evalsvc keeps (the openqa prompt file, the linked copies of local eval datasets and
    their `datasets` caches) lives under it. Empty variables count as unset, as the XDG spec says.
    """
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "evalsvc"
