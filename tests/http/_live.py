"""The evalsvc service over real HTTP on 127.0.0.1: in a thread (uvicorn) or as `python -m evalsvc service`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

FAKE_TARGETS = {"perf": "tests._jobfakes:perf", "eval": "tests._jobfakes:eval", "capacity": "tests._jobfakes:capacity"}
START_TIMEOUT_S = 30.0


@dataclass
class Live:
    """A running service and an HTTP client for it."""

    base_url: str
    client: httpx.Client
    app: Starlette | None = None
    process: subprocess.Popen[bytes] | None = None
    stderr_path: Path | None = None

    def wait_state(self, job_id: str, states: tuple[str, ...], timeout: float = 60.0) -> dict[str, Any]:
        """Poll the job until its state is one of `states`; return the job."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.client.get(f"/api/v1/jobs/{job_id}").json()["job"]
            if job["state"] in states:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {job['state']} after {timeout}s, wanted {states}")
            time.sleep(0.05)

    def wait_progress(self, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Poll until the job reports progress; return the job."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.client.get(f"/api/v1/jobs/{job_id}").json()["job"]
            if job["progress"]:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} reported no progress in {timeout}s: {job}")
            time.sleep(0.05)


def client_for(base_url: str, token: str | None = None, timeout: float = 120.0) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base_url, timeout=timeout, trust_env=False, headers=headers)


@contextmanager
def serve_app(app: Starlette, token: str | None = None) -> Iterator[Live]:
    """Run `app` with uvicorn in a thread on 127.0.0.1 (a free port) until the block ends."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    with client_for(base_url, token) as client:
        try:
            yield Live(base_url=base_url, client=client, app=app)
        finally:
            server.should_exit = True
            thread.join(60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def service_process(outputs: Path, *args: str, port: int | None = None, token: str | None = None,
                    env: dict[str, str] | None = None, script: str | None = None) -> Iterator[Live]:
    """Run `python -m evalsvc service --host 127.0.0.1 --port P --outputs DIR ARGS` (or a Python `script`
    that serves on PORT) until the block ends; SIGTERM then SIGKILL at the end if still running."""
    port = port or free_port()
    stderr_path = outputs.parent / f"service-{port}-{time.monotonic_ns()}.stderr"
    if script is not None:
        cmd = [sys.executable, "-c", script.replace("PORT", str(port)).replace("OUTPUTS", repr(str(outputs)))]
    else:
        cmd = [sys.executable, "-m", "evalsvc", "service", "--host", "127.0.0.1", "--port", str(port),
               "--outputs", str(outputs), *args]
    full_env = {**os.environ, **(env or {})}
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                                env=full_env, cwd=str(Path(__file__).resolve().parents[2]))
    base_url = f"http://127.0.0.1:{port}"
    try:
        with client_for(base_url, token) as client:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"service did not start (exit {proc.poll()}): "
                                       f"{stderr_path.read_text(errors='replace')}")
                time.sleep(0.05)
            yield Live(base_url=base_url, client=client, process=proc, stderr_path=stderr_path)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
