"""llama.cpp's server (../shared/peers/llama-server.sh, SmolLM2-135M-Instruct) for the benchmarks that run
against a real model: started on a free 127.0.0.1 port when no URL is given, stopped afterwards."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "llama-server.sh"
"""The peer script beside this checkout (../shared/peers/llama-server.sh)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_llama(peer: Path = PEER) -> tuple[int, str]:
    """Start llama-server on a free port (built once, cached by the script); returns (port, chat/completions URL)."""
    port = free_port()
    out = subprocess.run(["bash", str(peer), "start", str(port)], check=True, capture_output=True, text=True)
    return port, out.stdout.strip().splitlines()[-1] + "/chat/completions"


def stop_llama(port: int, peer: Path = PEER) -> None:
    subprocess.run(["bash", str(peer), "stop", str(port)], check=False)
