"""Run configurations. Validation happens once, here, before any work starts.

Every field is accepted with the same name by the library, the CLI (as --kebab-case) and the HTTP body.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from ._validate import (
    check_fields,
    check_type,
    from_mapping,
    redact_secret,
    require_choice,
    require_headers,
    require_http_url,
    require_range,
    require_text,
)
from ._secrets import redact_keys, redact_url, secret_name
from .errors import ConfigError

PERF_APIS = ("openai", "dashscope", "anthropic", "gemini")
PERF_DATASETS = ("openqa", "random", "line_by_line", "custom")
ARRIVALS = ("poisson", "constant")
SLO_METRICS = ("ttft_ms", "tpot_ms", "latency_ms")


@dataclass(frozen=True, kw_only=True)
class PerfConfig:
    """A load test of one endpoint. `number`, `parallel` and `rate` may be lists: the run sweeps them."""

    model: str
    """Model name sent in each request."""
    url: str
    """The complete endpoint URL, e.g. http://127.0.0.1:8000/v1/chat/completions."""
    api: str = "openai"
    """Wire dialect: openai | dashscope | anthropic | gemini."""
    api_key: str | None = None
    """Sent as a bearer token (or the dialect's key header). Never logged or written."""
    number: int | list[int] = 1000
    """Measured requests per run (warmup requests come on top)."""
    parallel: int | list[int] = 1
    """Maximum requests in flight."""
    rate: float | list[float] = -1
    """Arrivals per second; -1 sends as fast as `parallel` allows."""
    arrival: str = "poisson"
    """How arrivals are spaced when `rate` > 0: poisson | constant."""
    dataset: str = "openqa"
    """Prompt source: openqa | random | line_by_line | custom."""
    dataset_path: str | None = None
    """Local file for line_by_line / custom, or a local copy of openqa."""
    prompt_tokens: int = 1024
    """Prompt length for the random dataset, in tokens."""
    tokenizer_path: str | None = None
    """Local tokenizer directory: random prompts then have exact token lengths."""
    max_tokens: int = 2048
    """Output tokens requested per request."""
    min_tokens: int | None = None
    """Ask the server for at least this many output tokens (vLLM/SGLang `min_tokens`)."""
    temperature: float = 0.0
    stream: bool = True
    """Stream the response (needed for TTFT / ITL)."""
    warmup: int = 0
    """Requests sent before each run and excluded from its metrics."""
    duration: float | None = None
    """Stop each run after this many seconds; unsent requests are not counted."""
    timeout: float = 600.0
    """Per-request timeout in seconds."""
    connect_timeout: float = 30.0
    """Seconds to wait for a connection."""
    workers: int = 1
    """Client processes sharing the load; raise it when the summary says the run was client-bound."""
    slo: dict[str, float] | None = None
    """Thresholds in ms on ttft_ms / tpot_ms / latency_ms; the summary reports goodput against them."""
    headers: dict[str, str] | None = None
    """Extra HTTP headers for every request."""
    extra_body: dict[str, Any] | None = None
    """Extra fields merged into every request body."""
    preflight: bool = True
    """Send one test request first; stop with the server's answer if it does not succeed."""
    seed: int = 42
    """Seeds prompt sampling and Poisson arrivals."""
    record_requests: bool = True
    """Write one JSONL record per request."""
    report: bool = True
    """Write report.html (charts of the run, self-contained) into the output directory."""
    debug: bool = False
    work_dir: str = "outputs"
    """Each run writes a timestamped directory under it."""

    def __post_init__(self) -> None:
        check_fields(self)
        require_text("model", self.model)
        require_http_url("url", self.url)
        require_choice("api", self.api, PERF_APIS)
        if self.api_key is not None and not isinstance(self.api_key, str):
            raise ConfigError("api_key", "must be a string")
        for name in ("number", "parallel"):
            for v in _as_list(name, getattr(self, name), int):
                require_range(name, v, low=1)
        rates = _as_list("rate", self.rate, float)
        for r in rates:
            if r != -1:
                require_range("rate", r, low=0, low_open=True)
        require_choice("arrival", self.arrival, ARRIVALS)
        require_choice("dataset", self.dataset, PERF_DATASETS)
        if self.dataset in ("line_by_line", "custom") and not self.dataset_path:
            raise ConfigError("dataset_path", f"is required for dataset {self.dataset!r}")
        require_range("prompt_tokens", self.prompt_tokens, low=1)
        require_range("max_tokens", self.max_tokens, low=1)
        require_range("min_tokens", self.min_tokens, low=0, allow_none=True)
        if self.min_tokens is not None and self.min_tokens > self.max_tokens:
            raise ConfigError("min_tokens", f"must be <= max_tokens ({self.max_tokens}), got {self.min_tokens}")
        require_range("temperature", self.temperature, low=0)
        require_range("warmup", self.warmup, low=0)
        require_range("duration", self.duration, low=0, low_open=True, allow_none=True)
        require_range("timeout", self.timeout, low=0, low_open=True)
        require_range("connect_timeout", self.connect_timeout, low=0, low_open=True)
        require_range("workers", self.workers, low=1, high=256)
        if self.slo is not None:
            check_type("slo", self.slo, dict)
            for key, value in self.slo.items():
                require_choice("slo", key, SLO_METRICS)
                require_range(f"slo.{key}", value, low=0, low_open=True)
        require_headers("headers", self.headers)
        if self.extra_body is not None:
            try:
                orjson.dumps(self.extra_body)
            except TypeError as exc:
                raise ConfigError("extra_body", f"must be JSON-serialisable ({exc})") from None
        require_text("work_dir", self.work_dir)
        self.runs()  # the sweep must pair up

    def runs(self) -> list[tuple[str, int, int, float]]:
        """The sweep as (key, number, parallel, rate) tuples, in order."""
        numbers = _as_list("number", self.number, int)
        parallels = _as_list("parallel", self.parallel, int)
        rates = _as_list("rate", self.rate, float)
        by_rate = any(r > 0 for r in rates)
        axis_name, axis = ("rate", rates) if by_rate else ("parallel", parallels)
        length = max(len(numbers), len(parallels), len(rates))
        for name, values in (("number", numbers), ("parallel", parallels), ("rate", rates)):
            if len(values) not in (1, length):
                raise ConfigError(name, f"has {len(values)} values but the sweep has {length}; "
                                  "give one value or one per run")
        if by_rate and any(r <= 0 for r in rates):
            raise ConfigError("rate", "cannot mix unlimited (-1) and positive rates in one sweep")

        def pick(values: list[Any], i: int) -> Any:
            return values[i] if len(values) > 1 else values[0]

        out = []
        for i in range(length):
            n, p, r = pick(numbers, i), pick(parallels, i), pick(rates, i)
            head = f"rate_{_num(r)}" if by_rate else f"parallel_{p}"
            out.append((f"{head}_number_{n}", n, p, r))
        keys = [k for k, *_ in out]
        if len(set(keys)) != len(keys):
            raise ConfigError(axis_name, "the sweep repeats a run; each pair must be distinct")
        return out

    @classmethod
    def from_dict(cls, data: Any) -> PerfConfig:
        """Build from a JSON-like dict: unknown fields and wrong types raise ConfigError."""
        return from_mapping(cls, data)

    def replace(self, **changes: Any) -> PerfConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self, *, redact: bool = True) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if redact:
            data["api_key"] = redact_secret(self.api_key)
            data["url"] = redact_url(self.url)
            if self.headers:
                data["headers"] = {k: ("***" if secret_name(k) else v) for k, v in self.headers.items()}
            if self.extra_body:
                data["extra_body"] = redact_keys(self.extra_body)
        return data

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"PerfConfig({shown})"




def _num(value: float) -> str:
    return f"{value:g}"


def _as_list(name: str, value: Any, tp: type) -> list[Any]:
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ConfigError(name, "must not be an empty list")
    return [check_type(name, v, tp) for v in values]


DEFAULT_GENERATION_CONFIG: dict[str, Any] = {"temperature": 0.0, "max_tokens": 2048}
GENERATION_KEYS = ("temperature", "max_tokens", "top_p", "top_k", "timeout", "seed", "stop",
                   "presence_penalty", "frequency_penalty", "extra_body")
_GENERATION_TYPES: dict[str, Any] = {
    "temperature": float, "max_tokens": int, "top_p": float, "top_k": int, "timeout": float, "seed": int,
    "stop": str | list[str], "presence_penalty": float, "frequency_penalty": float, "extra_body": dict,
}
_GENERATION_RANGES: dict[str, dict[str, Any]] = {
    "temperature": {"low": 0, "high": 2}, "max_tokens": {"low": 1}, "top_p": {"low": 0, "high": 1},
    "top_k": {"low": -1}, "timeout": {"low": 0, "low_open": True, "high": 86400},
    "presence_penalty": {"low": -2, "high": 2}, "frequency_penalty": {"low": -2, "high": 2},
}
_MAX_LIMIT = 10**9


def _require_finite(field: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(field, f"must be a finite number, got {value!r}")


def _require_base_url(field: str, url: str) -> None:
    """Refuse credentials and a query in an OpenAI base URL, without echoing them.

    Credentials in the URL turn into Basic auth that replaces the bearer key (and break the preflight
    client); a query ends up before the path the OpenAI client appends (.../v1/?q=1chat/completions).
    """
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return  # require_http_url says what is wrong
    if "@" in netloc:
        raise ConfigError(field, "must not carry credentials (user:password@host); pass the key as api_key, "
                          "it is sent as a bearer token and never written")
    if "?" in url or "#" in url:
        raise ConfigError(field, "must be the base URL without a query or fragment (e.g. http://host:8000/v1): "
                          "/chat/completions is appended to it; pass a key as api_key")


def _check_generation(value: Any) -> dict[str, Any]:
    """generation_config with the defaults filled in, each option type- and range-checked (None: unset).

    Every option reaches every worker's requests, so a wrong type must fail here, not in each worker.
    """
    gen = check_type("generation_config", value, dict)
    unknown = sorted(set(gen) - set(GENERATION_KEYS), key=str)
    if unknown:
        raise ConfigError(f"generation_config.{unknown[0]}",
                          f"unknown option (accepted: {', '.join(GENERATION_KEYS)})")
    merged = {**DEFAULT_GENERATION_CONFIG, **gen}
    for key, option in merged.items():
        name = f"generation_config.{key}"
        if option is None:
            if key in DEFAULT_GENERATION_CONFIG:
                raise ConfigError(name, "is required")
            continue
        option = check_type(name, option, _GENERATION_TYPES[key])
        _require_finite(name, option)
        if key in _GENERATION_RANGES:
            require_range(name, option, **_GENERATION_RANGES[key])
        if key == "extra_body":
            try:
                orjson.dumps(option)
            except TypeError as exc:
                raise ConfigError(name, f"must be JSON-serialisable ({exc})") from None
        merged[key] = option
    return merged


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """An accuracy evaluation of a served model on one or more benchmarks."""

    model: str
    """Model name sent in each request."""
    api_url: str
    """OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1."""
    datasets: list[str]
    """Benchmark names from the catalogue (`evalsvc benchmarks`)."""
    api_key: str = "EMPTY"
    """Never logged or written."""
    limit: int | float | None = None
    """Samples per dataset subset: an integer count, or a fraction in (0, 1)."""
    eval_batch_size: int = 1
    """Concurrent requests per dataset."""
    generation_config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_GENERATION_CONFIG))
    """temperature (0.0), max_tokens (2048), top_p, top_k, timeout (s), ..."""
    work_dir: str = "outputs"
    seed: int = 42
    debug: bool = False
    dataset_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-dataset options: subset_list, few_shot_num, local_path, ..."""
    dataset_dir: str | None = None
    """Folder holding local copies of datasets, one sub-folder per benchmark."""
    max_workers: int = 4
    """Datasets evaluated at once, one worker process each."""
    timeout: float | None = None
    """Overall time limit in seconds; the run is cancelled when it is reached."""
    retries: int = 2
    """Retries per request on 429 / 5xx / timeouts."""
    retry_interval: float = 1.0
    """Seconds between retries."""
    use_cache: str | None = None
    """Output directory of an earlier, interrupted run to resume."""
    preflight: bool = True
    """Check the endpoint answers before starting."""

    def __post_init__(self) -> None:
        if isinstance(self.datasets, str):
            object.__setattr__(self, "datasets", [self.datasets])
        check_fields(self)  # library callers skip from_dict: every field's type is checked here too
        require_text("model", self.model)
        _require_base_url("api_url", self.api_url)
        require_http_url("api_url", self.api_url)
        datasets = list(self.datasets)  # a copy: the caller's list may change later
        object.__setattr__(self, "datasets", datasets)
        if not datasets:
            raise ConfigError("datasets", "must name at least one benchmark")
        if len(set(datasets)) != len(datasets):
            raise ConfigError("datasets", "names a benchmark twice")
        if self.limit is not None:
            if isinstance(self.limit, float) and not self.limit.is_integer():
                if not 0 < self.limit < 1:
                    raise ConfigError("limit", f"a fraction must be in (0, 1), got {self.limit!r}")
            else:
                object.__setattr__(self, "limit", int(self.limit))
                require_range("limit", self.limit, low=1, high=_MAX_LIMIT)
        require_range("eval_batch_size", self.eval_batch_size, low=1, high=1024)
        object.__setattr__(self, "generation_config", _check_generation(self.generation_config))
        require_text("work_dir", self.work_dir)
        # evalscope's catalogue, read from its index files (no evalscope import): unknown names get a
        # suggestion, benchmarks evalsvc cannot run and per-dataset options evalscope would ignore are refused.
        from .eval._catalogue import check_benchmark, check_dataset_args

        metas = {name: check_benchmark(name) for name in datasets}
        for name, value in self.dataset_args.items():
            if name not in datasets:
                raise ConfigError(f"dataset_args.{name}", "is not one of the requested datasets")
            check_dataset_args(name, value, metas[name])
        if self.dataset_dir is not None:
            require_text("dataset_dir", self.dataset_dir)
        require_range("max_workers", self.max_workers, low=1, high=64)
        _require_finite("timeout", self.timeout)
        require_range("timeout", self.timeout, low=0, low_open=True, allow_none=True)
        require_range("retries", self.retries, low=0, high=100)
        _require_finite("retry_interval", self.retry_interval)
        require_range("retry_interval", self.retry_interval, low=0, high=3600)

    @classmethod
    def from_dict(cls, data: Any) -> EvalConfig:
        """Build from a JSON-like dict: unknown fields and wrong types raise ConfigError."""
        return from_mapping(cls, data)

    def replace(self, **changes: Any) -> EvalConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self, *, redact: bool = True) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if redact:
            data["api_key"] = redact_secret(self.api_key)
            data["api_url"] = redact_url(self.api_url)
        return data

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"EvalConfig({shown})"
