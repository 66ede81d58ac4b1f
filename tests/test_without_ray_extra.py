"""Without the `ray` extra: naming a Ray cluster says what to install, and nothing else changes.

Ray may be installed for the rest of the suite; each test runs a fresh interpreter in which it cannot be
imported, as on a machine where it is absent (the blocker of test_without_eval_extra.py).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.test_without_eval_extra import without_evalscope

MESSAGE = "running on a Ray cluster (ray_address) needs the ray extra: pip install 'evalsvc[ray]'"


def without_ray(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return without_evalscope(code, cwd, blocked=("ray",))


def test_cli_ray_address_says_how_to_install_the_extra(tmp_path: Path) -> None:
    args = ["perf", "--model", "m", "--url", "http://127.0.0.1:9/v1/chat/completions", "--number", "1",
            "--ray-address", "auto", "--work-dir", str(tmp_path / "out")]
    out = without_ray(f"from evalsvc.cli import main\nmain({args!r})", tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr == f"MissingExtra: {MESSAGE}\n"  # one line, no traceback
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_library_and_service_name_the_extra(tmp_path: Path) -> None:
    out = without_ray(f"""
        import json
        from starlette.testclient import TestClient
        from evalsvc import PerfConfig
        from evalsvc.core.errors import MissingExtra
        from evalsvc.http import create_app

        from evalsvc import run_perf
        try:
            run_perf(PerfConfig(model="m", url="http://127.0.0.1:9/v1/chat/completions", ray_address="ray://head:10001",
                                work_dir={str(tmp_path / "lib")!r}))
        except MissingExtra as exc:
            print(json.dumps(["library", exc.extra, str(exc)]))
        try:
            create_app(outputs={str(tmp_path / "outputs")!r}, ray_address="auto")
        except MissingExtra as exc:
            print(json.dumps(["service", exc.extra, str(exc)]))
        body = {{"model": "m", "url": "http://127.0.0.1:9/v1/chat/completions", "ray_address": "auto"}}
        with TestClient(create_app(outputs={str(tmp_path / "outputs")!r})) as client:
            r = client.post("/api/v1/jobs/perf", json=body)
            print(json.dumps(["http", r.status_code, r.json()["error"]]))
            print(json.dumps(["jobs", client.get("/api/v1/jobs").json()["total"]]))
        """, tmp_path)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[0] == ["library", "ray", MESSAGE]
    assert not (tmp_path / "lib").exists()  # refused before anything was written
    assert lines[1] == ["service", "ray", MESSAGE]  # `evalsvc service --ray-address` without Ray: exit 2
    # a request may not pick the cluster (the service's choice): refused as input, before any extra is needed
    status, error = lines[2][1:]
    assert status == 400 and error["type"] == "ConfigError" and error["field"] == "ray_address"
    assert lines[3] == ["jobs", 0]
