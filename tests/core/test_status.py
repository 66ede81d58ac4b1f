"""One status vocabulary, one exit-code table, every error class in errors.py with its exit code."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import evalsvc
from evalsvc.core import errors
from evalsvc.core.jobs import FINAL_STATES, STATES
from evalsvc.core.status import EXIT_CODE, ExitCode, JobState, Phase, RunStatus, exit_code

SOURCE = Path(evalsvc.__file__).parent


def test_the_exit_code_table() -> None:
    assert {str(s): int(c) for s, c in EXIT_CODE.items()} == {
        "completed": 0, "incomplete": 1, "failed": 1, "timeout": 1, "interrupted": 130, "cancelled": 130}
    assert set(EXIT_CODE) == set(RunStatus)  # every status has its code
    assert exit_code("completed") == 0 and exit_code("interrupted") == 130
    assert exit_code("no-such-status") == 1  # an unknown outcome never passes as success


def test_statuses_are_plain_strings_in_json() -> None:
    import json

    import orjson

    assert json.dumps({"s": RunStatus.FAILED}) == '{"s": "failed"}'
    assert orjson.dumps({"s": RunStatus.FAILED, "j": JobState.QUEUED}) == b'{"s":"failed","j":"queued"}'
    assert f"{RunStatus.INTERRUPTED}" == str(RunStatus.INTERRUPTED) == "interrupted"


def test_job_states_reuse_the_run_statuses() -> None:
    assert [str(s) for s in STATES] == ["queued", "running", "completed", "failed", "cancelled", "interrupted"]
    assert {str(s) for s in FINAL_STATES} <= {str(s) for s in RunStatus}
    assert JobState.RUNNING == Phase.RUNNING


def test_no_status_word_is_compared_as_a_literal_outside_status_py() -> None:
    words = "|".join(str(s) for s in [*RunStatus, *Phase, JobState.QUEUED])
    pattern = re.compile(rf"""(status|state|outcome)\w*\s*(==|!=|in)\s*[\(\[{{]?\s*["']({words})["']""")
    offenders = []
    for path in SOURCE.rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(SOURCE)}:{number}: {line.strip()}")
    assert offenders == []


def _error_classes_defined_in(module: object) -> list[type]:
    return [obj for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, errors.EvalsvcError) and obj.__module__ == module.__name__]  # type: ignore[attr-defined]


def test_every_error_class_lives_in_errors_py_and_its_docstring_tree() -> None:
    outside = []
    for info in pkgutil.walk_packages([str(SOURCE)], prefix="evalsvc."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        if module is not errors:
            outside += [f"{info.name}.{cls.__name__}" for cls in _error_classes_defined_in(module)]
    assert outside == []
    doc = errors.__doc__ or ""
    for cls in _error_classes_defined_in(errors):
        assert re.search(rf"^\s+{cls.__name__}\s", doc, re.MULTILINE), \
            f"{cls.__name__} missing from the tree in errors.py"


@pytest.mark.parametrize(("cls", "code"), [
    (errors.ConfigError, 2), (errors.DatasetError, 2), (errors.EndpointError, 1), (errors.EndpointUnreachable, 1),
    (errors.EndpointStatusError, 1), (errors.ClientProcessError, 1), (errors.RunnerLocked, 1),
])
def test_each_error_carries_its_exit_code(cls: type[errors.EvalsvcError], code: int) -> None:
    assert cls.exit_code == code
    assert cls.exit_code in {int(c) for c in ExitCode}


def test_client_process_error_is_an_evalsvc_error_with_the_survivors_stats() -> None:
    exc = errors.ClientProcessError("client process evalsvc-perf-1 exited with code -9", stats={"requests": 3})
    assert isinstance(exc, errors.EvalsvcError) and not isinstance(exc, RuntimeError)
    assert exc.stats == {"requests": 3} and str(exc).startswith("client process")
    assert errors.ClientProcessError("died before it was ready").stats is None


def test_run_cancelled_is_gone_from_the_public_api() -> None:
    # It was public but never raised: a stopped run returns its result with status interrupted/cancelled.
    assert "RunCancelled" not in evalsvc.__all__ and not hasattr(errors, "RunCancelled")
    assert {"RunStatus", "ClientProcessError"} <= set(evalsvc.__all__)
