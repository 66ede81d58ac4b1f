"""The OpenAPI 3.1 document served at /openapi.json; request bodies derive from the config field declarations."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..core.config import CONVERSATION_DATASETS, FILE_DATASETS, CapacityConfig, EvalConfig, PerfConfig
from ..core.fields import json_schema
from ..core.jobs import KINDS, LOG_TAIL_MAX_BYTES, STATES

# The cross-field rules JSON Schema cannot say; validation (evalsvc.core.config) enforces them with a 400.
_CROSS_FIELD = {
    "PerfConfig": "Also checked, beyond this schema: min_tokens <= max_tokens; min_prompt_tokens <= "
                  "max_prompt_tokens and min_output_tokens <= max_output_tokens; think_time > 0 needs "
                  "multi_turn; the sweep lists (number, parallel, "
                  "rate) have one value or the same length, pair up into distinct runs, and do not mix -1 with "
                  "positive rates; prompt_tokens_min <= prompt_tokens_max and max_tokens_min <= max_tokens_max, "
                  "each pair given together when its *_stdev is not; prefix_groups > 1 needs prefix_tokens; "
                  "rate_start needs a rate > 0.",
    "CapacityConfig": "Also checked, beyond this schema: slo has at least one threshold; low <= high (whole "
                      "numbers for search=parallel); the PerfConfig rules.",
    "EvalConfig": "Also checked, beyond this schema: evalsvc can run every named benchmark (evalscope's catalogue; "
                  "the enum lists them when the catalogue is installed), dataset_args names only requested "
                  "datasets with options that benchmark accepts, a fractional limit selects at least one "
                  "sample of every subset evaluated, and judge.strategy llm_recall is only for benchmarks "
                  "with rule scoring.",
}
_JSON_LIMIT = ("Integers anywhere in the body, free-form objects included, must fit in 64 bits. The service "
               "itself also refuses targets it may not call (a host that is not a valid DNS name or address, "
               "link-local addresses, hosts outside --allow-target), paths outside its roots, values "
               "beyond its operator limits (see the README's Security section) and a ray_address other than "
               "its own (the operator's --ray-address: leave it out).")
_FILE_DATASETS = {"if": {"properties": {"dataset": {"enum": list(FILE_DATASETS)}}, "required": ["dataset"]},
                  "then": {"required": ["dataset_path"], "properties": {"dataset_path": {"type": "string"}}}}
_MULTI_TURN = {"if": {"properties": {"multi_turn": {"const": True}}, "required": ["multi_turn"]},
               "then": {"required": ["dataset"], "properties": {"dataset": {"enum": list(CONVERSATION_DATASETS)}}}}

_NULL = {"type": "null"}
# the workload rules the schema can say (validation says the rest): random-only fields stay unset elsewhere,
# a trace takes no rate, speed only a trace, ignore_eos only the openai dialect without min_tokens
_RANDOM_ONLY = {"if": {"properties": {"dataset": {"const": "random"}}, "required": ["dataset"]},
                "else": {"properties": {"prefix_tokens": {"const": 0}, "prefix_groups": {"const": 1},
                                        **{f"{what}_{k}": _NULL for what in ("prompt_tokens", "max_tokens")
                                           for k in ("stdev", "min", "max")}}}}
_TRACE = {"if": {"properties": {"dataset": {"const": "trace"}}, "required": ["dataset"]},
          "then": {"properties": {"rate": {"anyOf": [{"const": -1}, {"type": "array", "items": {"const": -1}}]},
                                  "rate_start": _NULL}},
          "else": {"properties": {"speed": {"const": 1}}}}
_IGNORE_EOS = {"if": {"properties": {"ignore_eos": {"const": True}}, "required": ["ignore_eos"]},
               "then": {"properties": {"api": {"const": "openai"}, "min_tokens": _NULL}}}


EXAMPLES = {
    "eval": {
        "gsm8k_iquiz": {"summary": "SPEC §5: two benchmarks, 10 samples each", "value": {
            "model": "qwen-plus", "api_url": "https://dashscope.aliyuncs.com/compatible-mode/v1",
            "api_key": "your-api-key", "datasets": ["gsm8k", "iquiz"], "limit": 10,
            "generation_config": {"temperature": 0.0, "max_tokens": 2048}}},
        "batch": {"summary": "SPEC §5: three benchmarks, 4 concurrent requests", "value": {
            "model": "qwen-plus", "api_url": "http://localhost:8000/v1", "datasets": ["gsm8k", "iquiz", "ceval"],
            "limit": 50, "eval_batch_size": 4}},
    },
    "perf": {
        "openqa": {"summary": "SPEC §5: 100 requests, 10 in flight", "value": {
            "model": "qwen-plus", "url": "https://dashscope.aliyuncs.com/compatible-mode/v1/chat/completions",
            "api": "openai", "api_key": "your-api-key", "number": 100, "parallel": 10, "dataset": "openqa",
            "max_tokens": 2048, "temperature": 0.0}},
        "local": {"summary": "SPEC §5: a local server, 1000 requests, 20 in flight", "value": {
            "model": "qwen2.5", "url": "http://localhost:8000/v1/chat/completions", "api": "openai",
            "number": 1000, "parallel": 20, "max_tokens": 2048}},
    },
    "capacity": {
        "parallel": {"summary": "The most concurrent requests keeping 95 % of requests under 500 ms TTFT", "value": {
            "model": "qwen2.5", "url": "http://localhost:8000/v1/chat/completions", "dataset": "random",
            "prompt_tokens": 512, "max_tokens": 128, "slo": {"ttft_ms": 500}, "attainment": 0.95,
            "search": "parallel", "low": 1, "high": 128}},
    },
}


def build_openapi(*, auth: bool, metrics_public: bool = False) -> dict[str, Any]:
    """The OpenAPI document.

    Args:
        auth: whether /api/ routes require a bearer token (adds the security scheme).
        metrics_public: /metrics is served without the token.

    Returns:
        The document as a JSON-able dict.
    """
    secured: dict[str, Any] = {"security": [{"bearerAuth": []}]} if auth else {}
    api_errors = {"400": _ref_response("Error", "invalid parameters: which field, why"),
                  **({"401": _ref_response("Error", "missing or wrong bearer token")} if auth else {}),
                  "403": _ref_response("Error", "the request's Origin is not the service's own nor allowed")}
    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}

    def blocking(kind: str, summary: str, success: str) -> dict[str, Any]:
        return {"post": {
            "operationId": f"run_{kind}", "summary": summary, "tags": [kind], **secured,
            "description": "Blocks until the run has finished: set a long client timeout, or use the job API. "
                           "If the client disconnects, the run is cancelled.",
            "requestBody": _body(kind),
            "responses": {
                "200": _ref_response(success, "the run completed"), **api_errors,
                "409": _ref_response("RunError", "the run was cancelled through the job API"),
                "413": _ref_response("Error", "request body too large"),
                "415": _ref_response("Error", "the body is not sent as Content-Type: application/json"),
                "429": _ref_response("Error", "the job queue is full; retry later (see Retry-After)"),
                "500": _ref_response("RunError", "the run failed inside evalsvc"),
                "502": _ref_response("RunError", "the endpoint under test could not be used"),
                "503": _ref_response("RunError", "the service is shutting down"),
                "504": _ref_response("RunError", "the run reached its time limit"),
            }}}

    def submit(kind: str) -> dict[str, Any]:
        return {"post": {
            "operationId": f"submit_{kind}_job", "summary": f"Submit a {kind} job; answers at once with its id",
            "tags": ["jobs"], **secured, "requestBody": _body(kind),
            "responses": {"202": _ref_response("JobAccepted", "queued (or already running)"), **api_errors,
                          "413": _ref_response("Error", "request body too large"),
                          "415": _ref_response("Error", "the body is not sent as Content-Type: application/json"),
                          "429": _ref_response("Error", "the job queue is full; retry later (see Retry-After)"),
                          "503": _ref_response("Error", "the service is shutting down")}}}

    job_responses = {**({"401": api_errors["401"]} if auth else {}), "403": api_errors["403"],
                     "404": _ref_response("Error", "no job with this id")}
    paths = {
        "/health": {"get": {"operationId": "health", "summary": "Liveness and job counts (no auth)",
                            "tags": ["service"], "responses": {"200": _ref_response("Health", "the service is up")}}},
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "tags": ["service"],
                                  "responses": {"200": {
                                      "description": "the OpenAPI document",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        "/api/v1/eval": blocking("eval", "Evaluate a model on benchmarks; answers when done", "EvalSuccess"),
        "/api/v1/perf": blocking("perf", "Load-test an endpoint; answers when done", "PerfSuccess"),
        "/api/v1/jobs/eval": submit("eval"),
        "/api/v1/jobs/perf": submit("perf"),
        "/api/v1/capacity": blocking("capacity", "Search the most load an endpoint takes within its SLOs; answers "
                                     "when done", "CapacitySuccess"),
        "/api/v1/jobs/capacity": submit("capacity"),
        "/api/v1/jobs": {"get": {
            "operationId": "list_jobs", "summary": "Jobs, newest first (without results)", "tags": ["jobs"], **secured,
            "parameters": [
                {"name": "state", "in": "query", "schema": {"type": "string", "enum": list(STATES)}},
                {"name": "kind", "in": "query", "schema": {"type": "string", "enum": list(KINDS)}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000,
                                                            "default": 50}},
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}}],
            "responses": {"200": _ref_response("JobList", "the jobs"), **api_errors}}},
        "/api/v1/jobs/{job_id}": {"get": {
            "operationId": "get_job", "summary": "A job's state and progress", "tags": ["jobs"], **secured,
            "parameters": [job_id],
            "responses": {"200": _ref_response("JobStatus", "the job"), **job_responses}},
            "delete": {
            "operationId": "delete_job", "tags": ["jobs"], **secured, "parameters": [job_id],
            "summary": "Delete a finished job: its output directory under the outputs root, its log and its record",
            "responses": {"200": _ref_response("JobStatus", "deleted (the job as it was)"), **job_responses,
                          "409": _ref_response("Error", "the job is queued or running: cancel it first")}}},
        "/api/v1/jobs/{job_id}/result": {"get": {
            "operationId": "get_job_result", "tags": ["jobs"], **secured, "parameters": [job_id],
            "summary": "A finished job's outcome: the same status code and body the blocking endpoint gives",
            "responses": {
                "200": {"description": "the job completed", "content": {"application/json": {"schema": {
                    "oneOf": [{"$ref": "#/components/schemas/EvalSuccess"},
                              {"$ref": "#/components/schemas/PerfSuccess"},
                              {"$ref": "#/components/schemas/CapacitySuccess"}]}}}},
                **job_responses,
                "400": _ref_response("RunError", "the job failed on invalid input"),
                "409": _ref_response("RunError", "the job has not finished, or was cancelled"),
                "500": _ref_response("RunError", "the job failed inside evalsvc"),
                "502": _ref_response("RunError", "the endpoint under test could not be used"),
                "503": _ref_response("RunError", "the service stopped while the job ran"),
                "504": _ref_response("RunError", "the run reached its time limit")}}},
        "/api/v1/jobs/{job_id}/cancel": {"post": {
            "operationId": "cancel_job", "tags": ["jobs"], **secured, "parameters": [job_id],
            "summary": "Cancel a job: a queued one at once, a running one stops and keeps what it measured",
            "responses": {"200": _ref_response("JobStatus", "cancelled (it was queued)"),
                          "202": _ref_response("JobStatus", "stopping (it was running)"),
                          **job_responses,
                          "409": _ref_response("Error", "the job has already finished")}}},
        "/api/v1/jobs/{job_id}/events": {"get": {
            "operationId": "job_events", "tags": ["jobs"], **secured, "parameters": [job_id],
            "summary": "Live progress as server-sent events",
            "description": "Events: `state` (the job, first), `progress`, `log`, `end` (the finished job, last). "
                           "A comment line is sent every 15 s of silence.",
            "responses": {"200": {"description": "an event stream",
                                  "content": {"text/event-stream": {"schema": _SSE_EVENT}}},
                          **job_responses}}},
        "/api/v1/jobs/{job_id}/log": {"get": {
            "operationId": "job_log", "tags": ["jobs"], **secured,
            "parameters": [job_id, {"name": "max_bytes", "in": "query", "schema": {
                "type": "integer", "minimum": 1, "maximum": LOG_TAIL_MAX_BYTES, "default": 65536}}],
            "summary": "The end of the job's log (its worker's output), from the start of a line",
            "description": "The first line names the job and the request id that submitted it. Header "
                           "`X-Log-Truncated: true` says earlier output was left out.",
            "responses": {"200": {"description": "the log's last max_bytes (empty before the worker starts)",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}},
                          "400": _ref_response("Error", "max_bytes is not an integer in range"),
                          **job_responses}}},
        "/api/v1/jobs/{job_id}/report": {"get": {
            "operationId": "job_report", "tags": ["jobs"], **secured, "parameters": [job_id],
            "summary": "The report.html the job's run wrote (perf and eval runs)",
            "responses": {"200": {"description": "the report, a self-contained HTML page",
                                  "content": {"text/html": {"schema": {"type": "string"}}}},
                          **job_responses}}},
        "/api/v1/compare": {"get": {
            "operationId": "compare_jobs", "tags": ["jobs"], **secured,
            "parameters": [{"name": n, "in": "query", "required": True, "schema": {"type": "string"},
                            "description": f"the id of the {n} run's finished job"} for n in ("base", "new")]
            + [{"name": "format", "in": "query", "required": False,
                "schema": {"type": "string", "enum": ["json", "html"], "default": "json"},
                "description": "json: the comparison as data; html: the comparison page (both runs on the same "
                               "charts, self-contained, served with a sandboxing CSP)"}],
            "summary": "Compare two finished runs of one kind (evalsvc compare): every metric, its change and "
                       "whether the change is beyond noise",
            "responses": {"200": {"description": "the comparison", "content": {"application/json": {"schema": {
                "type": "object", "required": ["status", "comparison"], "properties": {
                    "status": {"const": "ok"}, "base": {"type": "string"}, "new": {"type": "string"},
                    "comparison": {"type": "object", "description": "kind, base, new, rows (point, metric, "
                                   "base, new, change, rel_change, ci_low, ci_high, noise, method), only_base, "
                                   "only_new"}}}},
                                  "text/html": {"schema": {"type": "string"}}}},
                          "400": _ref_response("Error", "a job is missing, unfinished, or the runs cannot be compared"),
                          **job_responses}}},
        "/metrics": {"get": {
            "operationId": "metrics", "tags": ["service"], **({} if metrics_public else secured),
            "summary": ("Prometheus metrics (text format): jobs, queue, job durations, HTTP requests, "
                        "live perf progress"),
            "responses": {"200": {"description": "Prometheus text exposition format 0.0.4",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}},
                          **({"401": api_errors["401"]} if auth and not metrics_public else {})}}},
    }
    components: dict[str, Any] = {"schemas": {
        "EvalRequest": config_schema(EvalConfig),
        "PerfRequest": config_schema(PerfConfig),
        "CapacityRequest": config_schema(CapacityConfig),
        **_RESPONSE_SCHEMAS,
    }}
    if auth:
        components["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "evalsvc", "version": __version__,
                 "description": "Evaluate and load-test LLM endpoints. Request fields are the EvalConfig / "
                                "PerfConfig fields; errors are JSON with the field and the reason."},
        "paths": paths,
        "components": components,
    }


def config_schema(cls: type) -> dict[str, Any]:
    """JSON Schema of a config dataclass, derived from its field declarations (evalsvc.core.fields)."""
    out = json_schema(cls)
    properties = out["properties"]
    properties["api_key"]["description"] = "Sent to the endpoint under test; never stored, logged or returned."
    properties["work_dir"]["description"] = ("Directory for the run's outputs, relative to the service's outputs "
                                             "root (absolute paths and '..' are refused). Default: the outputs root.")
    if cls is EvalConfig:
        names, judged = _benchmark_names()
        if names:
            properties["datasets"]["items"]["enum"] = names
        if judged:  # judge-scored benchmarks only with a judge
            no_judge = {"anyOf": [{"not": {"required": ["judge"]}},
                                  {"properties": {"judge": {"type": "null"}}, "required": ["judge"]}]}
            refused = {"properties": {"datasets": {"items": {"not": {"enum": judged}}}}}
            out["allOf"] = [{"if": no_judge, "then": refused}]
    if issubclass(cls, PerfConfig):
        out["allOf"] = [_FILE_DATASETS, _RANDOM_ONLY, _TRACE, _IGNORE_EOS, _MULTI_TURN]
    out["description"] = f"{(cls.__doc__ or '').strip()} {_CROSS_FIELD[cls.__name__]} {_JSON_LIMIT}"
    return out


def _benchmark_names() -> tuple[list[str], list[str]]:
    """The benchmarks EvalConfig accepts, and those of them it accepts only with a `judge`, from evalscope's
    catalogue files (evalscope itself is not imported)."""
    try:
        from ..core.eval import list_benchmarks

        entries = list_benchmarks()
    except Exception:  # no catalogue: the document simply lists no names
        return [], []
    return sorted(b["name"] for b in entries), sorted(b["name"] for b in entries if b.get("requires_judge"))


def _body(kind: str) -> dict[str, Any]:
    name = {"eval": "EvalRequest", "perf": "PerfRequest", "capacity": "CapacityRequest"}[kind]
    return {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{name}"}, "examples": EXAMPLES[kind]}}}


def _ref_response(schema: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


_SSE_EVENT = {"type": "object", "required": ["event", "data"], "properties": {
    "event": {"type": "string", "enum": ["state", "progress", "log", "event", "end"]},
    "data": {"type": "string", "description": "the event as JSON: a Job for state / end"}}}

_JOB = {"type": "object", "required": ["id", "kind", "state", "created_at"], "properties": {
    "id": {"type": "string"}, "kind": {"type": "string", "enum": list(KINDS)},
    "state": {"type": "string", "enum": list(STATES)},
    "created_at": {"type": "string"}, "started_at": {"type": ["string", "null"]},
    "finished_at": {"type": ["string", "null"]},
    "config": {"type": "object", "description": "the run's config, api_key redacted"},
    "progress": {"type": "object", "description": "the latest progress event per run (perf) or dataset (eval)"},
    "output_dir": {"type": ["string", "null"]},
    "error": {"type": ["object", "null"]},
    "has_result": {"type": "boolean"},
    "request_id": {"type": ["string", "null"], "description": "the X-Request-ID of the request that submitted it"}}}

_RESPONSE_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["status", "message"], "properties": {
        "status": {"const": "error"}, "message": {"type": "string"},
        "error": {"type": "object", "description": "type; field and reason for invalid parameters",
                  "properties": {"type": {"type": "string"}, "field": {"type": "string"},
                                 "reason": {"type": "string"}}},
        "endpoints": {"type": "array", "items": {"type": "string"}}}},
    "RunError": {"type": "object", "required": ["status", "message"], "properties": {
        "status": {"const": "error"}, "message": {"type": "string"}, "error": {"type": "object"},
        "job_id": {"type": "string"}, "state": {"type": "string"}, "output_dir": {"type": ["string", "null"]},
        "result": {"type": "object"}, "results": {"type": "object"},
        "run_error": {"type": "string", "description": "the engine's own error text, when the error does not "
                                                       "already say it"}}},
    "EvalSuccess": {"type": "object", "required": ["status", "message", "result", "output_dir"], "properties": {
        "status": {"const": "success"}, "message": {"const": "Evaluation completed"},
        "result": {"type": "object", "description": "one entry per dataset: score, metric, requested, scored, "
                                                    "errored, incomplete, subsets, ..."},
        "output_dir": {"type": "string"}, "job_id": {"type": "string"}}},
    "PerfSuccess": {"type": "object", "required": ["status", "message", "results", "output_dir"], "properties": {
        "status": {"const": "success"}, "message": {"const": "Performance test completed"},
        "results": {"type": "object", "description": "one entry per run, keyed parallel_{P}_number_{N}, "
                                                     "rate_{R}_number_{N} or trace_speed_{S}_parallel_{P}_"
                                                     "number_{N}: {metrics, percentiles}"},
        "output_dir": {"type": "string"}, "job_id": {"type": "string"}}},
    "CapacitySuccess": {"type": "object", "required": ["status", "message", "results", "capacity", "output_dir"],
                        "properties": {
        "status": {"const": "success"}, "message": {"const": "Capacity search completed"},
        "capacity": {"type": "object", "description": "the answer: value, unit, ended, conclusive, message, "
                                                      "last_pass, first_fail, knee, goodput, probes, ..."},
        "results": {"type": "object", "description": "every probe run, keyed like perf runs: {metrics, percentiles}"},
        "output_dir": {"type": "string"}, "job_id": {"type": "string"}}},
    "Job": _JOB,
    "JobStatus": {"type": "object", "required": ["status", "job"], "properties": {
        "status": {"const": "ok"}, "job": {"$ref": "#/components/schemas/Job"}}},
    "JobAccepted": {"type": "object", "required": ["status", "job_id", "job"], "properties": {
        "status": {"const": "accepted"}, "job_id": {"type": "string"}, "job": {"$ref": "#/components/schemas/Job"},
        "links": {"type": "object", "additionalProperties": {"type": "string"}}}},
    "JobList": {"type": "object", "required": ["status", "jobs", "total"], "properties": {
        "status": {"const": "ok"}, "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
        "total": {"type": "integer"}, "limit": {"type": "integer"}, "offset": {"type": "integer"}}},
    "Health": {"type": "object", "required": ["status", "service", "timestamp"], "properties": {
        "status": {"const": "ok"}, "service": {"const": "evalsvc"}, "timestamp": {"type": "string"},
        "version": {"type": "string"}, "jobs": {"type": "object"}}},
}
