"""What a user expects of any command line tool: bare `evalsvc` helps, `--version` answers."""

from __future__ import annotations

import subprocess
import sys

import evalsvc


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalsvc", *args], capture_output=True, text=True, timeout=60)


def test_bare_evalsvc_prints_the_help_and_exits_0() -> None:
    bare = run_cli()
    assert bare.returncode == 0, bare.stderr
    assert "Usage:" in bare.stdout and "perf" in bare.stdout and "eval" in bare.stdout
    assert bare.stderr == ""  # was: "Error:  (see '... --help')" and exit 2
    assert bare.stdout == run_cli("--help").stdout


def test_version() -> None:
    out = run_cli("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"evalsvc {evalsvc.__version__}\n"
    assert "--version" in run_cli("--help").stdout


def test_unknown_command_is_still_a_usage_error() -> None:
    out = run_cli("nope")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [out.stderr.strip()] and "No such command 'nope'" in out.stderr
