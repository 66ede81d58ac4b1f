"""/openapi.json and validation agree: schemathesis generates request bodies from the served document.

Positive bodies (the schema accepts them) must be accepted by the service (202), except for the rules the
schema's description names as checked beyond it (cross-field rules) and the service's path confinement
(documented on work_dir); negative bodies (the schema refuses them) must get a 400 naming a field, never a 2xx
and never a 5xx. The job runner's `submit` is stubbed: this tests validation, not the engines, so it is fast.
Generation is derandomized: the same bodies every run. A second, exhaustive check sets every field and every
generation_config option of a valid body to each of a fixed list of edge values (in and out of range, wrong
types, null) and compares the schema's verdict (jsonschema) with validation's.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from starlette.testclient import TestClient

from evalsvc.core.config import EvalConfig, PerfConfig
from evalsvc.core.errors import ConfigError
from evalsvc.core.jobs import Job, JobRunner
from evalsvc.http import create_app
from evalsvc.http._openapi import build_openapi

EXAMPLES = 75
CONFIGS = {"perf": PerfConfig, "eval": EvalConfig}
PATH_FIELDS = {"work_dir", "dataset_path", "tokenizer_path", "dataset_dir", "use_cache"}

# (field, fragment of the reason) of the cross-field rules the schema description names.
CROSS_FIELD = {
    "perf": [("min_tokens", "must be <= max_tokens"), ("number", "the sweep has"), ("parallel", "the sweep has"),
             ("rate", "the sweep has"), ("rate", "cannot mix"), ("rate", "repeats a run"),
             ("parallel", "repeats a run"), ("ignore_eos", "is not supported by api"),
             ("min_tokens", "cannot be combined with ignore_eos"), ("prompt_tokens_", "random dataset only"),
             ("max_tokens_", "random dataset only"), ("prefix_", "random dataset only"),
             ("prompt_tokens_min", "must be <= prompt_tokens_max"), ("max_tokens_min", "must be <= max_tokens_max"),
             ("prompt_tokens_m", "is needed too"), ("max_tokens_m", "is needed too"),
             ("prefix_groups", "needs prefix_tokens"), ("rate", "the trace dataset sends"),
             ("speed", "trace dataset only"), ("rate_start", "ramps towards rate"),
             ("min_prompt_tokens", "must be <="), ("min_output_tokens", "must be <="),
             ("think_time", "needs multi_turn")],
    "eval": [("dataset_args.", ""), ("limit", "selects no sample"), ("judge.strategy", "no rule scoring")],
}
# Said in each request schema's description: integers nested in free-form objects must fit in 64 bits.
JSON_LIMIT = ("extra_body", "dataset_args", "generation_config.extra_body", "judge.generation_config.extra_body")


def _cross_field(kind: str, error: dict[str, Any]) -> bool:
    return any(error.get("field", "").startswith(field) and fragment in error.get("reason", "")
               for field, fragment in CROSS_FIELD[kind])


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    submitted: list[Any] = []

    def submit(self: Any, kind: str, config: Any, request_id: str | None = None) -> Job:
        # record the validated config; run nothing
        submitted.append(config)
        return Job(id=f"job{len(submitted)}", kind=kind, created_at="2026-01-01T00:00:00Z")

    patch = pytest.MonkeyPatch()
    patch.setattr(JobRunner, "submit", submit)
    app = create_app(tmp_path_factory.mktemp("outputs"), max_queued=10_000)
    with TestClient(app) as test_client:
        yield test_client
    patch.undo()


@functools.cache
def _schema() -> Any:
    return schemathesis.openapi.from_dict(build_openapi(auth=False))


def _operation(kind: str) -> Any:
    return _schema()[f"/api/v1/jobs/{kind}"]["POST"]


def _run(client: Any, kind: str, mode: GenerationMode) -> tuple[Counter[str], list[str]]:
    counts: Counter[str] = Counter()
    problems: list[str] = []

    @given(case=_operation(kind).as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.generate])
    def check(case: Any) -> None:
        body = case.body
        content = body if isinstance(body, bytes) else json.dumps(body)  # negative bodies may be raw bytes
        response = client.post(f"/api/v1/jobs/{kind}", content=content,
                               headers={"content-type": "application/json"})
        status = response.status_code
        error = response.json().get("error") or {} if status != 202 else {}
        if mode is GenerationMode.POSITIVE:
            try:  # the library's validation of the same body, without the service's path policy
                CONFIGS[kind].from_dict(body)
                valid = "valid"
            except ConfigError as exc:
                valid = f"{exc.field}: {exc.reason}"
                if _cross_field(kind, {"field": exc.field, "reason": exc.reason}):
                    counts["cross_field"] += 1
                    return
                if exc.field in JSON_LIMIT and "64-bit" in exc.reason:
                    counts["json_int64"] += 1
                    return
                problems.append(f"schema accepts, validation refuses ({valid}): {body!r}"[:400])
                return
            if status == 202:
                counts["accepted"] += 1
            elif status == 400 and error.get("field", "").split(".")[0] in PATH_FIELDS:
                counts["path_policy"] += 1
            elif status == 400 and error.get("field") in ("url", "api_url") and any(
                    why in error.get("reason", "") for why in ("valid host name", "link-local", "--allow-target")):
                counts["target_policy"] += 1  # the service's target rules (README, Security), not the schema's
            elif status == 400 and "exceeds the service's limit" in error.get("reason", ""):
                counts["operator_limit"] += 1  # the operator's limits (evalsvc service --max-*), not the schema's
            elif status == 400 and error.get("field") == "ray_address" and "service chooses" in error.get("reason", ""):
                counts["cluster_policy"] += 1  # the operator's cluster (evalsvc service --ray-address)
            else:
                problems.append(f"schema and validation accept, service answers {status} {error}: {body!r}"[:400])
        else:
            if (status == 400 and "field" in error) or (status in (400, 413) and not isinstance(body, dict)):
                counts["refused_400"] += 1
            else:
                problems.append(f"schema refuses, service answers {status} {error}: {body!r}"[:400])

    check()
    return counts, problems


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["perf", "eval"])
def test_every_body_the_schema_accepts_is_accepted(client: Any, kind: str) -> None:
    counts, problems = _run(client, kind, GenerationMode.POSITIVE)
    print(kind, "positive", dict(counts))
    assert not problems, "\n".join(problems[:10])
    assert counts["accepted"] >= EXAMPLES // 3, counts  # most bodies reach the job runner


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["perf", "eval"])
def test_every_body_the_schema_refuses_gets_a_400(client: Any, kind: str) -> None:
    counts, problems = _run(client, kind, GenerationMode.NEGATIVE)
    print(kind, "negative", dict(counts))
    assert not problems, "\n".join(problems[:10])
    assert counts["refused_400"] >= EXAMPLES // 2, counts


def test_the_schema_says_what_it_cannot_check() -> None:
    schemas = build_openapi(auth=False)["components"]["schemas"]
    assert "min_tokens <= max_tokens" in schemas["PerfRequest"]["description"]
    assert "dataset_args" in schemas["EvalRequest"]["description"]
    assert all("64 bits" in schemas[name]["description"] for name in ("PerfRequest", "EvalRequest"))


PROBES: list[Any] = [None, True, False, "", " ", "x", "gsm8k", "http://h/v1", "http://[::1]:1/v1", "ftp://h",
                     0, -1, 1, 2, 3, 5, 0.5, 1.5, -0.5, 100, 257, 1025, 7200, 86401, 10**9 + 1, 2**63,
                     [], [1], [1, 1], [1, 2], [-1, 2], [0.5], ["x"], ["gsm8k", "gsm8k"], {}, {"a": 1}, {"ttft_ms": 0},
                     {"ttft_ms": 5}, {"X-A": "b"}, {"bad name": "v"}, {"X": "a\nb"}]
BASES = {"perf": {"model": "m", "url": "http://127.0.0.1:9/v1/chat/completions"},
         "eval": {"model": "m", "api_url": "http://127.0.0.1:9/v1", "datasets": ["gsm8k"]}}


def _probe_bodies(kind: str, schema: dict[str, Any]) -> list[dict[str, Any]]:
    """A valid base body with one field (or one generation_config option) set to each probe value."""
    base = BASES[kind]
    bodies = [{**base, name: value} for name in schema["properties"] for value in PROBES]
    if kind == "eval":
        options = schema["properties"]["generation_config"]["properties"]
        bodies += [{**base, "generation_config": {name: value}} for name in options for value in PROBES]
    return bodies


@pytest.mark.parametrize("kind", ["perf", "eval"])
def test_boundary_values_get_the_same_verdict_from_schema_and_validation(kind: str) -> None:
    """Every field and generation_config option at typical edges: in-range, out of range, wrong type, null."""
    from jsonschema import Draft202012Validator

    schema = build_openapi(auth=False)["components"]["schemas"]["PerfRequest" if kind == "perf" else "EvalRequest"]
    validator = Draft202012Validator(schema)
    disagreements, checked = [], Counter[str]()
    for body in _probe_bodies(kind, schema):
        schema_ok = validator.is_valid(body)
        try:
            CONFIGS[kind].from_dict(body)
            error = None
        except ConfigError as exc:
            error = exc
        if error is not None and schema_ok and _cross_field(kind, {"field": error.field, "reason": error.reason}):
            checked["cross_field"] += 1
            continue
        checked["agree_valid" if schema_ok and error is None else "agree_invalid" if not schema_ok and error
                else "disagree"] += 1
        if schema_ok != (error is None):
            changed = {k: v for k, v in body.items() if BASES[kind].get(k, object()) != v}
            disagreements.append(f"schema {'accepts' if schema_ok else 'refuses'}, validation "
                                 f"{'refuses (' + str(error) + ')' if error else 'accepts'}: {changed}")
    print(kind, dict(checked))
    assert not disagreements, "\n".join(disagreements[:20])
    assert checked["agree_valid"] > 50 and checked["agree_invalid"] > 200, checked


@pytest.mark.parametrize("raw", [b"-9223372036854775809", b"9223372036854775808", b"18446744073709551616"])
def test_an_integer_beyond_64_bits_is_refused_not_rounded(client: Any, raw: bytes) -> None:
    # orjson reads these as floats rounded into the 64-bit range (-2**63 - 1 -> -2**63): the schema refuses
    # them (minimum/maximum), so validation must see the number that was sent and refuse it too
    body = b'{"model": "m", "api_url": "http://127.0.0.1:1/v1", "datasets": ["gsm8k"], "seed": ' + raw + b"}"
    r = client.post("/api/v1/jobs/eval", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == "seed"
