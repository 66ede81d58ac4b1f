"""Run configurations, each field declared once (evalsvc.core.fields): type, default, range, choices, help.

Validation happens once, in `__post_init__`, before any work starts; every field is accepted with the same
name by the library, the CLI (as --kebab-case) and the HTTP body, and the CLI options and /openapi.json are
generated from these declarations. Rules across fields are the `@rule` methods.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from . import fields
from ._secrets import redact_keys, redact_url, secret_name
from ._validate import HEADER_NAME, HEADER_VALUE, redact_secret
from .errors import ConfigError
from .fields import Cli, Range, field, rule

PERF_APIS = ("openai", "dashscope", "anthropic", "gemini")
PERF_DATASETS = ("openqa", "random", "line_by_line", "custom")
FILE_DATASETS = ("line_by_line", "custom")
ARRIVALS = ("poisson", "constant")
SLO_METRICS = ("ttft_ms", "tpot_ms", "latency_ms")
API_KEY_ENV = "EVALSVC_API_KEY"
JUDGE_API_KEY_ENV = "EVALSVC_JUDGE_API_KEY"
"""`evalsvc eval` reads the judge's key from it when --judge has no api_key."""

_AT_LEAST_1 = (Range(low=1),)
_AT_LEAST_0 = (Range(low=0),)
_POSITIVE = (Range(low=0, low_open=True),)
_MAX_LIMIT = 10**9


def _redact_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: ("***" if secret_name(k) else v) for k, v in headers.items()}


@dataclass(frozen=True, kw_only=True)
class PerfConfig:
    """A load test of one endpoint. `number`, `parallel` and `rate` may be lists: the run sweeps them."""

    model: str = field(help="Model name sent in each request.", text=True)
    url: str = field(help="The complete endpoint URL, e.g. http://127.0.0.1:8000/v1/chat/completions.", url="http",
                     pattern_reason="must be an http(s) URL with a host and a valid port", redact=redact_url)
    api: str = field("openai", help="Wire dialect: openai | dashscope | anthropic | gemini.", choices=PERF_APIS)
    api_key: str | None = field(None, help="Sent as a bearer token (or the dialect's key header). Never logged or "
                                "written.", secret=True, redact=redact_secret, cli=Cli(envvar=API_KEY_ENV))
    number: int | list[int] = field(1000, help="Measured requests per run (warmup requests come on top).",
                                    ranges=_AT_LEAST_1, min_items=1)
    parallel: int | list[int] = field(1, help="Maximum requests in flight.", ranges=_AT_LEAST_1, min_items=1)
    rate: float | list[float] = field(-1.0, help="Arrivals per second; -1 sends as fast as `parallel` allows.",
                                      ranges=(*_POSITIVE, Range(const=-1)), min_items=1)
    arrival: str = field("poisson", help="How arrivals are spaced when `rate` > 0: poisson | constant.",
                         choices=ARRIVALS)
    dataset: str = field("openqa", help="Prompt source: openqa | random | line_by_line | custom.",
                         choices=PERF_DATASETS)
    dataset_path: str | None = field(None, help="Local file for line_by_line / custom, or a local copy of openqa.",
                                     text=True)
    prompt_tokens: int = field(1024, help="Prompt length for the random dataset, in tokens.", ranges=_AT_LEAST_1)
    tokenizer_path: str | None = field(None, help="Local tokenizer directory: random prompts then have exact token "
                                       "lengths.", text=True)
    max_tokens: int = field(2048, help="Output tokens requested per request.", ranges=_AT_LEAST_1)
    min_tokens: int | None = field(None, help="Ask the server for at least this many output tokens (vLLM/SGLang "
                                   "`min_tokens`); at most max_tokens.", ranges=_AT_LEAST_0)
    temperature: float = field(0.0, help="Sampling temperature sent in each request.", ranges=_AT_LEAST_0)
    stream: bool = field(True, help="Stream the response (needed for TTFT / ITL).")
    warmup: int = field(0, help="Requests sent before each run and excluded from its metrics.", ranges=_AT_LEAST_0)
    duration: float | None = field(None, help="Stop each run after this many seconds; unsent requests are not "
                                   "counted.", ranges=_POSITIVE)
    timeout: float = field(600.0, help="Per-request timeout in seconds.", ranges=_POSITIVE)
    connect_timeout: float = field(30.0, help="Seconds to wait for a connection.", ranges=_POSITIVE)
    workers: int = field(1, help="Client processes sharing the load; raise it when the summary says the run was "
                         "client-bound.", ranges=(Range(low=1, high=256),))
    slo: dict[str, float] | None = field(None, help='Thresholds in ms on ttft_ms / tpot_ms / latency_ms, e.g. '
                                         '{"ttft_ms": 500, "tpot_ms": 50}; the summary reports goodput against them.',
                                         keys=SLO_METRICS, ranges=_POSITIVE, cli=Cli(parse="json"))
    headers: dict[str, str] | None = field(None, help="Extra HTTP headers for every request (CLI: --header "
                                           "'Name: value', repeatable).", key_pattern=HEADER_NAME,
                                           key_reason="invalid header name", pattern=HEADER_VALUE,
                                           pattern_reason="header {key!r} must be latin-1 text without line breaks",
                                           redact=_redact_headers, cli=Cli(flag="header", parse="header"))
    extra_body: dict[str, Any] | None = field(None, help="Extra fields merged into every request body (a JSON "
                                              "object).", json=True, redact=redact_keys, cli=Cli(parse="json"))
    preflight: bool = field(True, help="Send one test request first; stop with the server's answer if it does not "
                            "succeed.")
    seed: int = field(42, help="Seeds prompt sampling and Poisson arrivals.")
    record_requests: bool = field(True, help="Write one JSONL record per request.")
    report: bool = field(True, help="Write report.html (charts of the run, self-contained) into the output "
                         "directory.")
    debug: bool = field(False, help="More detail in errors and outputs.")
    work_dir: str = field("outputs", help="Each run writes a timestamped directory under it.", text=True)

    def __post_init__(self) -> None:
        fields.validate(self)

    @rule("dataset", "dataset_path")
    def _dataset_file(self) -> None:
        if self.dataset in FILE_DATASETS and not self.dataset_path:
            raise ConfigError("dataset_path", f"is required for dataset {self.dataset!r}")

    @rule("min_tokens", "max_tokens")
    def _min_tokens(self) -> None:
        if self.min_tokens is not None and self.min_tokens > self.max_tokens:
            raise ConfigError("min_tokens", f"must be <= max_tokens ({self.max_tokens}), got {self.min_tokens}")

    @rule("number", "parallel", "rate")
    def _sweep(self) -> None:
        self.runs()  # the sweep must pair up

    def runs(self) -> list[tuple[str, int, int, float]]:
        """The sweep as (key, number, parallel, rate) tuples, in order."""
        numbers, parallels, rates = _as_list(self.number), _as_list(self.parallel), _as_list(self.rate)
        by_rate = any(r > 0 for r in rates)
        axis_name = "rate" if by_rate else "parallel"
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
            head = f"rate_{r:g}" if by_rate else f"parallel_{p}"
            out.append((f"{head}_number_{n}", n, p, r))
        keys = [k for k, *_ in out]
        if len(set(keys)) != len(keys):
            raise ConfigError(axis_name, "the sweep repeats a run; each pair must be distinct")
        return out

    @classmethod
    def from_dict(cls, data: Any) -> PerfConfig:
        """Build from a JSON-like dict: unknown fields and wrong types raise ConfigError."""
        return fields.from_dict(cls, data)

    def replace(self, **changes: Any) -> PerfConfig:
        """A copy with `changes`; only the changed fields (and the rules reading them) are checked again."""
        return fields.replace(self, changes)

    def to_dict(self, *, redact: bool = True) -> dict[str, Any]:
        return fields.to_dict(self, redact=redact)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"PerfConfig({shown})"


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


@dataclass(frozen=True, kw_only=True)
class GenerationOptions:
    """The options of EvalConfig.generation_config (a dict): each one declared here, checked and documented."""

    temperature: float = field(0.0, help="Sampling temperature.", ranges=(Range(low=0, high=2),),
                               cli=Cli(shortcut=True))
    max_tokens: int = field(2048, help="Output tokens per answer.", ranges=_AT_LEAST_1, cli=Cli(shortcut=True))
    top_p: float | None = field(None, help="Nucleus sampling mass.", ranges=(Range(low=0, high=1),))
    top_k: int | None = field(None, help="Top-k sampling (-1: off).", ranges=(Range(low=-1),))
    timeout: float | None = field(None, help="Per-request timeout in seconds.",
                                  ranges=(Range(low=0, low_open=True, high=86400),))
    seed: int | None = field(None, help="Sampling seed sent to the server.")
    stop: str | list[str] | None = field(None, help="Stop sequence(s).")
    presence_penalty: float | None = field(None, help="Presence penalty.", ranges=(Range(low=-2, high=2),))
    frequency_penalty: float | None = field(None, help="Frequency penalty.", ranges=(Range(low=-2, high=2),))
    extra_body: dict[str, Any] | None = field(None, help="Extra fields merged into each request body.", json=True)
    stream: bool | None = field(None, help="Stream the answers: the result's timing then has the time to first "
                                "token.")


GENERATION_KEYS = tuple(f.name for f in dataclasses.fields(GenerationOptions))
DEFAULT_GENERATION_CONFIG: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(GenerationOptions) if f.default is not None}


JUDGE_STRATEGIES = ("auto", "llm", "llm_recall")


@dataclass(frozen=True, kw_only=True)
class JudgeOptions:
    """The options of EvalConfig.judge: the OpenAI-compatible model that scores answers for judge-scored
    benchmarks (evalscope's judge configuration)."""

    api_url: str = field(help="The judge's OpenAI-compatible base URL, e.g. http://127.0.0.1:8001/v1.", url="base",
                         pattern_reason="must be an http(s) URL with a host and a valid port (the base URL, "
                         "e.g. http://host:8000/v1)")
    model: str = field(help="The judge's model name.", text=True)
    api_key: str | None = field(None, help="The judge's key, sent as a bearer token. Never logged or written. "
                                f"The CLI reads it from {JUDGE_API_KEY_ENV} when not given.", secret=True)
    generation_config: dict[str, Any] | None = field(None, help="The judge's sampling options (as the model's "
                                                     "generation_config; default temperature 0).",
                                                     options=GenerationOptions)
    concurrency: int | None = field(None, help="Judge requests in flight per dataset at most (default: "
                                    "eval_batch_size).", ranges=(Range(low=1, high=1024),))
    strategy: str = field("auto", help="auto: the judge scores the benchmarks that are judge-scored; llm: it "
                          "scores every benchmark; llm_recall: it rescores what the rules marked wrong.",
                          choices=JUDGE_STRATEGIES)


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """An accuracy evaluation of a served model on one or more benchmarks."""

    model: str = field(help="Model name sent in each request.", text=True)
    api_url: str = field(help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.", url="base",
                         pattern_reason="must be an http(s) URL with a host and a valid port (the base URL, "
                         "e.g. http://host:8000/v1)",
                         redact=redact_url)
    datasets: list[str] = field(help="Benchmark names from the catalogue (`evalsvc benchmarks`).", min_items=1,
                                unique=True, text=True, cli=Cli(short="d", parse="names"))
    api_key: str = field("EMPTY", help="Sent as a bearer token. Never logged or written.", secret=True,
                         redact=redact_secret, cli=Cli(envvar=API_KEY_ENV))
    limit: int | float | None = field(None, help="Samples per dataset subset: an integer count, or a fraction "
                                      "in (0, 1).",
                                      ranges=(Range(low=1, high=_MAX_LIMIT, integer=True),
                                              Range(low=0, high=1, low_open=True, high_open=True)))
    eval_batch_size: int = field(1, help="Concurrent requests per dataset.", ranges=(Range(low=1, high=1024),))
    generation_config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_GENERATION_CONFIG),
                                              help="Sampling options (a JSON object): "
                                              + ", ".join(GENERATION_KEYS) + ".",
                                              options=GenerationOptions, redact=redact_keys, cli=Cli(parse="json"))
    work_dir: str = field("outputs", help="Each run writes a timestamped directory under it.", text=True)
    seed: int = field(42, help="Random seed.")
    debug: bool = field(False, help="Verbose evalscope logs, shown live.")
    dataset_args: dict[str, dict[str, Any]] = field(default_factory=dict, help="Per-dataset options, e.g. "
                                                    '{"ceval": {"subset_list": ["logic"], "few_shot_num": 0}}: '
                                                    "subset_list, few_shot_num, local_path, ...",
                                                    json=True, cli=Cli(parse="json"))
    dataset_dir: str | None = field(None, help="Folder holding local copies of datasets, one sub-folder per "
                                    "benchmark.", text=True)
    max_workers: int = field(4, help="Datasets evaluated at once, one worker process each.",
                             ranges=(Range(low=1, high=64),))
    timeout: float | None = field(None, help="Overall time limit in seconds; the run is cancelled (and resumable) "
                                  "when it is reached.", ranges=_POSITIVE)
    retries: int = field(2, help="Retries per request on 429 / 5xx / timeouts.", ranges=(Range(low=0, high=100),))
    retry_interval: float = field(1.0, help="Seconds between retries.", ranges=(Range(low=0, high=3600),))
    use_cache: str | None = field(None, help="Output directory of an earlier, interrupted run to resume.", text=True)
    preflight: bool = field(True, help="Check the endpoint answers before starting.")
    report: bool = field(True, help="Write report.html (scores, subsets and a table of samples, self-contained) "
                         "into the output directory.")
    repeats: int = field(1, help="Answers generated per sample; the result gives each repeat's score, their "
                         "spread and pass@k. With temperature > 0 repeat r is sent seed + r.",
                         ranges=(Range(low=1, high=100),))
    judge: dict[str, Any] | None = field(None, help="An LLM judge for judge-scored benchmarks (a JSON object): "
                                         + ", ".join(f.name for f in dataclasses.fields(JudgeOptions))
                                         + "; api_url and model are required. Its key is never logged or written.",
                                         options=JudgeOptions, redact=redact_keys, cli=Cli(parse="json"))

    def __post_init__(self) -> None:
        if isinstance(self.datasets, str):  # a library convenience: EvalConfig(datasets="gsm8k")
            object.__setattr__(self, "datasets", [self.datasets])
        fields.validate(self)

    @rule("datasets", "dataset_args", "judge")
    def _catalogue(self) -> None:
        # evalscope's catalogue, read from its index files (no evalscope import): unknown names get a
        # suggestion, benchmarks evalsvc cannot run and per-dataset options evalscope would ignore are refused.
        from .eval._catalogue import check_benchmark, check_dataset_args

        metas = {name: check_benchmark(name, judge=self.judge is not None) for name in self.datasets}
        for name, value in self.dataset_args.items():
            if name not in metas:
                raise ConfigError(f"dataset_args.{name}", "is not one of the requested datasets")
            check_dataset_args(name, value, metas[name])

    @rule("judge", "datasets")
    def _judge(self) -> None:
        if self.judge is None:
            return
        from .eval._judge import check_judge_strategy

        check_judge_strategy(str(self.judge.get("strategy") or "auto"), list(self.datasets))

    @classmethod
    def from_dict(cls, data: Any) -> EvalConfig:
        """Build from a JSON-like dict: unknown fields and wrong types raise ConfigError."""
        if isinstance(data, dict) and isinstance(data.get("datasets"), str):  # the constructor's shortcut is not JSON's
            raise ConfigError("datasets", f"expected a list of strings, got {data['datasets']!r}")
        return fields.from_dict(cls, data)

    def replace(self, **changes: Any) -> EvalConfig:
        """A copy with `changes`; only the changed fields (and the rules reading them) are checked again."""
        return fields.replace(self, changes)

    def to_dict(self, *, redact: bool = True) -> dict[str, Any]:
        return fields.to_dict(self, redact=redact)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"EvalConfig({shown})"
