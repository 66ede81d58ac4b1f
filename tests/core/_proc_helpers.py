"""Functions test_proc.py runs in child processes (started with evalsvc.core._proc.start)."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def write_origin(path: str) -> None:
    """Write where evalsvc's toolkit and orjson were imported from."""
    import orjson

    from evalsvc.core import _proc

    with open(path, "w") as out:
        out.write(f"{os.path.realpath(_proc.__file__)}\n{os.path.realpath(orjson.__file__)}\n")


def sleep_with_a_child() -> None:
    """Start a sleeping child, print its pid, sleep."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print(child.pid, flush=True)
    time.sleep(60)
