"""A perf-only install (`pip install evalsvc`, without the `eval` extra): evaluation says what to install.

evalscope stays installed for the rest of the suite; each test runs a fresh interpreter in which a
meta-path finder refuses to import it, as on a machine where it is absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

MESSAGE = "evaluation needs the eval extra: pip install 'evalsvc[eval]'"

BLOCKER = textwrap.dedent("""
    import sys

    class _Absent:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in {blocked!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, _Absent())
""")


def without_evalscope(code: str, cwd: Path,
                      blocked: tuple[str, ...] = ("evalscope",)) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter where the `blocked` packages cannot be imported."""
    script = (BLOCKER.format(blocked=set(blocked)) + textwrap.dedent(code)
              + f"\nassert not {set(blocked)!r} & set(sys.modules)\n")
    return subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return without_evalscope(f"from evalsvc.cli import main\nmain({args!r})", cwd)


def test_the_blocker_works(tmp_path: Path) -> None:
    out = without_evalscope("""
        try:
            import evalscope
        except ImportError:
            print("blocked")
        """, tmp_path)
    assert out.stdout == "blocked\n", out.stderr


def test_cli_eval_and_benchmarks_say_what_to_install(tmp_path: Path) -> None:
    for args in (["eval", "--model", "m", "--api-url", "http://127.0.0.1:9/v1", "--datasets", "gsm8k",
                  "--work-dir", str(tmp_path / "out")],
                 ["benchmarks"]):
        out = cli(args, tmp_path)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr == f"MissingExtra: {MESSAGE}\n", args  # one line, no traceback
        assert out.stdout == ""
    assert not (tmp_path / "out").exists()  # nothing started, nothing written


def test_cli_help_and_perf_work_without_evalscope(tmp_path: Path, mock_server: Any) -> None:
    assert cli(["--help"], tmp_path).returncode == 0
    assert cli(["eval", "--help"], tmp_path).returncode == 0
    out = cli(["perf", "--model", "mock-model", "--url", mock_server.chat_url, "--dataset", "random",
               "--prompt-tokens", "8", "--max-tokens", "8", "--number", "3", "--work-dir", str(tmp_path / "out"),
               "--json"], tmp_path)
    assert out.returncode == 0, out.stderr
    (run,) = json.loads(out.stdout)["results"].values()
    assert run["metrics"]["requests_succeeded"] == 3


def test_library_raises_one_clear_error(tmp_path: Path) -> None:
    out = without_evalscope(f"""
        from evalsvc import EvalConfig, EvalsvcError, list_benchmarks, run_eval
        config = EvalConfig(model="m", api_url="http://127.0.0.1:9/v1", datasets=["gsm8k"],
                            work_dir={str(tmp_path / "out")!r})
        for call in (lambda: run_eval(config), list_benchmarks):
            try:
                call()
            except EvalsvcError as exc:
                print(type(exc).__name__, exc.extra, exc.exit_code, "|", exc)
        """, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"MissingExtra eval 2 | {MESSAGE}"] * 2


def test_service_answers_501_for_eval_and_still_serves_perf(tmp_path: Path) -> None:
    out = without_evalscope(f"""
        import json
        from starlette.testclient import TestClient
        from evalsvc.http import create_app

        body = {{"model": "m", "api_url": "http://127.0.0.1:9/v1", "datasets": ["gsm8k"]}}
        with TestClient(create_app(outputs={str(tmp_path / "outputs")!r})) as client:
            for path in ("/api/v1/eval", "/api/v1/jobs/eval"):
                r = client.post(path, json=body)
                print(json.dumps([path, r.status_code, r.json()]))
            r = client.post("/api/v1/perf", json={{"model": "m"}})
            print(json.dumps(["/api/v1/perf", r.status_code, r.json()]))
            print(json.dumps(["jobs", client.get("/api/v1/jobs").json()["total"]]))
        """, tmp_path)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    for path, status, answer in lines[:2]:
        assert status == 501, (path, answer)
        assert answer == {"status": "error", "message": MESSAGE, "error": {"type": "MissingExtra", "extra": "eval"}}
    path, status, answer = lines[2]
    assert status == 400 and answer["error"]["type"] == "ConfigError"  # perf: validated as usual
    assert lines[3] == ["jobs", 0]  # no failed eval job left behind


def test_tokenizer_path_without_transformers_names_the_extra(tmp_path: Path) -> None:
    (tmp_path / "tok").mkdir()
    out = without_evalscope(f"""
        from evalsvc import DatasetError
        from evalsvc.core.perf.datasets._tokenized import load_tokenizer
        try:
            load_tokenizer({str(tmp_path / "tok")!r})
        except DatasetError as exc:
            print(exc)
        """, tmp_path, blocked=("evalscope", "transformers"))
    assert out.returncode == 0, out.stderr
    assert out.stdout == "tokenizer_path: needs the tokenizer extra: pip install 'evalsvc[tokenizer]'\n"
