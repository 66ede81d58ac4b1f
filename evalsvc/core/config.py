"""Run configurations, each field declared once (evalsvc.core.fields): type, default, range, choices, help.

Validation happens once, in `__post_init__`, before any work starts; every field is accepted with the same
name by the library, the CLI (as --kebab-case) and the HTTP body, and the CLI options and /openapi.json are
generated from these declarations. Rules across fields are the `@rule` methods.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from . import fields
from ._cluster import ADDRESS_PATTERN, ADDRESS_REASON
from ._secrets import redact_keys, redact_url, secret_name
from ._validate import HEADER_NAME, HEADER_VALUE, redact_secret
from .errors import ConfigError
from .fields import Cli, Range, derive, field, rule

PERF_APIS = ("openai", "dashscope", "anthropic", "gemini")
PERF_DATASETS = ("openqa", "random", "line_by_line", "custom", "trace", "sharegpt")
FILE_DATASETS = ("line_by_line", "custom", "trace")
CONVERSATION_DATASETS = ("sharegpt",)
"""Datasets of conversations: the ones `multi_turn` can replay turn by turn."""
ARRIVALS = ("poisson", "constant", "gamma")
DEFAULT_NUMBER = 1000
IGNORE_EOS_APIS = ("openai",)  # the dialects whose servers (vLLM, SGLang) take ignore_eos / min_tokens
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


def _ray_address(what: str) -> Any:
    """The `ray_address` field of a run config (one declaration: the same values, checks and extra everywhere)."""
    return field(None, help=what + ' "auto", "ray://host:port" or the head\'s "host:port"; needs the ray extra: '
                 "pip install 'evalsvc[ray]'.", pattern=ADDRESS_PATTERN, pattern_reason=ADDRESS_REASON)


@dataclass(frozen=True, kw_only=True)
class PerfConfig:
    """A load test of one endpoint. `number`, `parallel` and `rate` may be lists: the run sweeps them."""

    model: str = field(help="Model name sent in each request.", text=True)
    url: str = field(help="The complete endpoint URL, e.g. http://127.0.0.1:8000/v1/chat/completions.", url="http",
                     pattern_reason="must be an http(s) URL with a host and a valid port", redact=redact_url)
    api: str = field("openai", help="Wire dialect: openai | dashscope | anthropic | gemini.", choices=PERF_APIS)
    api_key: str | None = field(None, help="Sent as a bearer token (or the dialect's key header). Never logged or "
                                "written.", secret=True, redact=redact_secret, cli=Cli(envvar=API_KEY_ENV))
    number: int | list[int] | None = field(None, help=f"Measured requests per run (warmup requests come on top); "
                                           f"default {DEFAULT_NUMBER}, or the trace's length for the trace dataset.",
                                           ranges=_AT_LEAST_1, min_items=1)
    parallel: int | list[int] = field(1, help="Maximum requests in flight.", ranges=_AT_LEAST_1, min_items=1)
    rate: float | list[float] = field(-1.0, help="Arrivals per second; -1 sends as fast as `parallel` allows.",
                                      ranges=(*_POSITIVE, Range(const=-1)), min_items=1)
    arrival: str = field("poisson", help="How arrivals are spaced when `rate` > 0: poisson | constant | gamma "
                         "(see `burstiness`).", choices=ARRIVALS)
    burstiness: float = field(1.0, help="Gamma arrivals: the gaps' shape (mean gap stays 1/rate); below 1 burstier, "
                              "above 1 more even, 1 = poisson.", ranges=_POSITIVE)
    rate_start: float | None = field(None, help="Ramp: the arrival rate at the run's start, rising (or falling) "
                                     "linearly in time to `rate` at the last request.", ranges=_AT_LEAST_0)
    dataset: str = field("openqa", help="Prompt source: openqa | random | line_by_line | custom | trace | "
                         "sharegpt.", choices=PERF_DATASETS)
    dataset_path: str | None = field(None, help="Local file for line_by_line / custom / trace, or a local copy "
                                     "(file or folder) of openqa / sharegpt.", text=True)
    prompt_tokens: int = field(1024, help="Prompt length for the random dataset, in tokens (the mean when "
                               "prompt_tokens_stdev is given; after the shared prefix).", ranges=_AT_LEAST_1)
    prompt_tokens_stdev: float | None = field(None, help="Random dataset: draw each prompt's length from a normal "
                                              "distribution (mean prompt_tokens, this stdev), seeded.",
                                              ranges=_AT_LEAST_0)
    prompt_tokens_min: int | None = field(None, help="Random dataset: the shortest prompt drawn (with "
                                          "prompt_tokens_max and no stdev: uniform lengths in [min, max]).",
                                          ranges=_AT_LEAST_1)
    prompt_tokens_max: int | None = field(None, help="Random dataset: the longest prompt drawn.", ranges=_AT_LEAST_1)
    prefix_tokens: int = field(0, help="Random dataset: every prompt starts with one of `prefix_groups` shared "
                               "prefixes of this many tokens (on top of prompt_tokens).", ranges=_AT_LEAST_0)
    prefix_groups: int = field(1, help="Random dataset: how many distinct shared prefixes (prompt i takes prefix "
                               "i mod prefix_groups).", ranges=_AT_LEAST_1)
    speed: float = field(1.0, help="Trace dataset: time scale of the replay (2 = twice as fast as recorded).",
                         ranges=_POSITIVE)
    tokenizer_path: str | None = field(None, help="Local tokenizer directory: random prompts then have exact token "
                                       "lengths.", text=True)
    max_tokens: int = field(2048, help="Output tokens requested per request.", ranges=_AT_LEAST_1)
    max_tokens_stdev: float | None = field(None, help="Random dataset: draw each request's max_tokens from a normal "
                                           "distribution (mean max_tokens, this stdev), seeded.", ranges=_AT_LEAST_0)
    max_tokens_min: int | None = field(None, help="Random dataset: the smallest max_tokens drawn (with "
                                       "max_tokens_max and no stdev: uniform in [min, max]).", ranges=_AT_LEAST_1)
    max_tokens_max: int | None = field(None, help="Random dataset: the largest max_tokens drawn.",
                                       ranges=_AT_LEAST_1)
    min_tokens: int | None = field(None, help="Ask the server for at least this many output tokens (vLLM/SGLang "
                                   "`min_tokens`); at most max_tokens.", ranges=_AT_LEAST_0)
    ignore_eos: bool = field(False, help="Make outputs as long as max_tokens: sends ignore_eos and min_tokens = "
                             "max_tokens (vLLM / SGLang; openai api only).")
    min_prompt_tokens: int | None = field(None, help="sharegpt: skip conversations whose prompt (first human turn "
                                          "and system message) is shorter, in estimated tokens.", ranges=_AT_LEAST_1)
    max_prompt_tokens: int | None = field(None, help="sharegpt: skip conversations whose prompt is longer, in "
                                          "estimated tokens.", ranges=_AT_LEAST_1)
    min_output_tokens: int | None = field(None, help="sharegpt: skip conversations whose reply (the dataset's "
                                          "gpt turn) is shorter, in estimated tokens.", ranges=_AT_LEAST_1)
    max_output_tokens: int | None = field(None, help="sharegpt: skip conversations whose reply is longer, in "
                                          "estimated tokens.", ranges=_AT_LEAST_1)
    dataset_max_tokens: bool = field(False, help="sharegpt: ask each request for as many output tokens as the "
                                     "dataset's own reply has (at most max_tokens).")
    multi_turn: bool = field(False, help="Conversation datasets (sharegpt): each session sends a conversation's "
                             "human turns in order, every request carrying the history with the model's real "
                             "answers; `parallel` counts sessions, `number` requests.")
    think_time: float = field(0.0, help="multi_turn: seconds a session waits between an answer and its next turn.",
                              ranges=_AT_LEAST_0)
    temperature: float = field(0.0, help="Sampling temperature sent in each request.", ranges=_AT_LEAST_0)
    stream: bool = field(True, help="Stream the response (needed for TTFT / ITL).")
    warmup: int = field(0, help="Requests sent before each run and excluded from its metrics.", ranges=_AT_LEAST_0)
    num_runs: int = field(1, help="Repeat each run this many times: the summary adds the mean, stdev, t-based 95% "
                          "interval and coefficient of variation of the headline metrics over the repeats.",
                          ranges=(Range(low=1, high=100),))
    duration: float | None = field(None, help="Stop each run after this many seconds; unsent requests are not "
                                   "counted.", ranges=_POSITIVE)
    timeout: float = field(600.0, help="Per-request timeout in seconds.", ranges=_POSITIVE)
    connect_timeout: float = field(30.0, help="Seconds to wait for a connection.", ranges=_POSITIVE)
    workers: int = field(1, help="Client processes sharing the load; raise it when the summary says the run was "
                         "client-bound.", ranges=(Range(low=1, high=256),))
    ray_address: str | None = _ray_address("Run each sweep point on a Ray cluster: `workers` Ray actors, spread over "
                                           "the nodes, share the load.")
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
    seed: int = field(42, help="Seeds prompt sampling, drawn lengths and random arrivals.")
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

    @rule("dataset", "multi_turn", "think_time")
    def _multi_turn(self) -> None:
        if self.multi_turn and self.dataset not in CONVERSATION_DATASETS:
            raise ConfigError("multi_turn", f"needs a conversation dataset ({', '.join(CONVERSATION_DATASETS)}); "
                              f"dataset {self.dataset!r} has single prompts")
        if self.think_time and not self.multi_turn:
            raise ConfigError("think_time", "applies between the turns of a session: it needs multi_turn")

    @rule("min_prompt_tokens", "max_prompt_tokens", "min_output_tokens", "max_output_tokens")
    def _length_filters(self) -> None:
        for what in ("prompt", "output"):
            low, high = getattr(self, f"min_{what}_tokens"), getattr(self, f"max_{what}_tokens")
            if low is not None and high is not None and low > high:
                raise ConfigError(f"min_{what}_tokens", f"must be <= max_{what}_tokens ({high}), got {low}")

    @rule("min_tokens", "max_tokens")
    def _min_tokens(self) -> None:
        if self.min_tokens is not None and self.min_tokens > self.max_tokens:
            raise ConfigError("min_tokens", f"must be <= max_tokens ({self.max_tokens}), got {self.min_tokens}")

    @rule("min_tokens", "ignore_eos", "api")
    def _ignore_eos(self) -> None:
        if not self.ignore_eos:
            return
        if self.api not in IGNORE_EOS_APIS:
            raise ConfigError("ignore_eos", f"is not supported by api {self.api!r} (its servers cannot be told to "
                              "ignore the end of text); use api 'openai' with a vLLM / SGLang-style server")
        if self.min_tokens is not None:
            raise ConfigError("min_tokens", "cannot be combined with ignore_eos (which sends min_tokens = the "
                              "request's max_tokens)")

    @rule("dataset", "prompt_tokens_stdev", "prompt_tokens_min", "prompt_tokens_max", "prefix_tokens",
          "prefix_groups", "max_tokens_stdev", "max_tokens_min", "max_tokens_max", "prompt_tokens", "max_tokens")
    def _random_only(self) -> None:
        given = [name for name in ("prompt_tokens_stdev", "prompt_tokens_min", "prompt_tokens_max", "max_tokens_stdev",
                                   "max_tokens_min", "max_tokens_max") if getattr(self, name) is not None]
        given += [name for name, unset in (("prefix_tokens", 0), ("prefix_groups", 1)) if getattr(self, name) != unset]
        if given and self.dataset != "random":
            raise ConfigError(given[0], f"applies to the random dataset only (dataset is {self.dataset!r})")
        for what in ("prompt_tokens", "max_tokens"):
            low, high = getattr(self, f"{what}_min"), getattr(self, f"{what}_max")
            if low is not None and high is not None and low > high:
                raise ConfigError(f"{what}_min", f"must be <= {what}_max ({high}), got {low}")
            if getattr(self, f"{what}_stdev") is None and (low is None) != (high is None):
                raise ConfigError(f"{what}_min" if low is None else f"{what}_max",
                                  f"is needed too: without {what}_stdev, lengths are uniform in "
                                  f"[{what}_min, {what}_max]")
        if self.prefix_groups > 1 and not self.prefix_tokens:
            raise ConfigError("prefix_groups", "needs prefix_tokens > 0")

    @rule("dataset", "rate", "rate_start", "arrival", "speed")
    def _schedule(self) -> None:
        rates = _as_list(self.rate)
        if self.dataset == "trace":
            if any(r > 0 for r in rates) or self.rate_start is not None:
                raise ConfigError("rate", "the trace dataset sends each request at its time in the trace; "
                                  "give speed to scale that, not rate")
            return
        if self.speed != 1.0:
            raise ConfigError("speed", "applies to the trace dataset only")
        if self.rate_start is not None and not any(r > 0 for r in rates):
            raise ConfigError("rate_start", "ramps towards rate: give a rate > 0 too")

    @rule("number", "parallel", "rate", "dataset")
    def _sweep(self) -> None:
        self.runs()  # the sweep must pair up

    def runs(self, trace_length: int | None = None) -> list[tuple[str, int, int, float]]:
        """The sweep as (key, number, parallel, rate) tuples, in order.

        `number` unset means DEFAULT_NUMBER, or for the trace dataset `trace_length` (the trace's requests,
        known once it is read; DEFAULT_NUMBER stands in before that)."""
        if self.number is not None:
            numbers = _as_list(self.number)
        else:
            numbers = [trace_length if self.dataset == "trace" and trace_length else DEFAULT_NUMBER]
        parallels, rates = _as_list(self.parallel), _as_list(self.rate)
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
            if self.dataset == "trace":
                head = f"trace_speed_{self.speed:g}_parallel_{p}"
            else:
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
    repetition_penalty: float | None = field(None, help="Repetition penalty (vLLM, SGLang, llama.cpp; > 1 "
                                             "discourages repeats).", ranges=(Range(low=0, low_open=True, high=10),))
    logprobs: bool | None = field(None, help="Ask for the log probabilities of the output tokens (kept in the "
                                  "predictions).")
    top_logprobs: int | None = field(None, help="With logprobs: this many most likely tokens per position.",
                                     ranges=(Range(low=0, high=20),))
    logit_bias: dict[str, float] | None = field(None, help='Token id -> bias in [-100, 100], e.g. {"50256": -100}.',
                                                key_pattern=r"^[0-9]+$", key_reason="must be a token id (digits)",
                                                ranges=(Range(low=-100, high=100),))
    stream: bool | None = field(None, help="Stream each answer: evalscope then records its time to first token, "
                                "and the result's timing has it.")
    reasoning_effort: str | None = field(None, help="Reasoning models: none | minimal | low | medium | high.",
                                         choices=("none", "minimal", "low", "medium", "high"))

    REFUSED: ClassVar[dict[str, str]] = {
        "n": "evalscope scores only the first of n answers, so n > 1 pays for answers never scored",
        "stop_seqs": "give the stop sequences as `stop`",
        "batch_size": "give eval_batch_size (the run's requests in flight)",
        "retries": "give the top-level `retries`",
        "retry_interval": "give the top-level `retry_interval`",
        "do_sample": "a local-checkpoint option; an endpoint samples when temperature > 0",
        "parallel_tool_calls": "only tool-calling benchmarks use it, and evalsvc evaluates text benchmarks",
        "response_schema": "it would change the answer format the benchmark's parser reads",
        "reasoning_history": "only multi-turn and agent benchmarks replay reasoning",
        "reasoning_tokens": "an Anthropic / Gemini option; evalsvc sends OpenAI chat completions "
                            "(use extra_body for a server's own field)",
        "reasoning_summary": "an OpenAI Responses API option; evalsvc sends chat completions",
        "anthropic_cache_control": "an Anthropic API option; evalsvc sends OpenAI chat completions",
        "anthropic_cache_strategy": "an Anthropic API option; evalsvc sends OpenAI chat completions",
        "extra_headers": "headers may carry credentials evalsvc would have to mask; give the key as api_key",
        "extra_query": "not supported; put fields for the server in extra_body",
        "height": "an image-generation option; evalsvc evaluates text benchmarks",
        "width": "an image-generation option; evalsvc evaluates text benchmarks",
        "num_inference_steps": "an image-generation option; evalsvc evaluates text benchmarks",
        "guidance_scale": "an image-generation option; evalsvc evaluates text benchmarks",
    }
    """evalscope's other generation options, each refused with the reason (see fields._check_options)."""


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
    eval_batch_size: int = field(1, help="Model requests in flight across the whole run (all datasets running at once "
                                 "share this bound).", ranges=(Range(low=1, high=1024),))
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
    ray_address: str | None = _ray_address("Evaluate each dataset on a node of a Ray cluster (every node sees the "
                                           "run directory at the same path).")
    timeout: float | None = field(None, help="Overall time limit in seconds; the run is cancelled (and resumable) "
                                  "when it is reached.", ranges=_POSITIVE)
    retries: int = field(2, help="Retries per request on 429 / 5xx / timeouts.", ranges=(Range(low=0, high=100),))
    retry_interval: float = field(1.0, help="Seconds between retries.", ranges=(Range(low=0, high=3600),))
    use_cache: str | None = field(None, help="Output directory of an earlier, interrupted run to resume.", text=True)
    preflight: bool = field(True, help="Check the endpoint serves the model before starting: GET /models, or "
                            "one short generation when /models cannot tell; transient failures are retried.")
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

    @rule("limit", "datasets", "dataset_args")
    def _fraction(self) -> None:
        # a fractional limit must select at least one sample of every subset (sizes from the catalogue)
        from .eval._catalogue import check_limit

        check_limit(self.limit, self.datasets, self.dataset_args)

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


SEARCH_AXES = ("parallel", "rate")
_SEARCH_DEFAULTS = {"parallel": (1.0, 256.0), "rate": (1.0, 256.0)}  # (low, high) when not given


@dataclass(frozen=True, kw_only=True)
class CapacityConfig(PerfConfig):
    """A capacity search: the largest concurrency (or arrival rate) at which `attainment` of the requests
    succeed and meet every `slo` threshold. Every PerfConfig field describes the endpoint and the workload
    of each probe, as in `evalsvc perf`; the search sets `parallel` (or `rate`) and the probe size."""

    number: int = derive(PerfConfig, "number", 100, min_items=None, help="Measured requests per probe, at least: a "
                         "probe sends max(number, 4 x its concurrency) requests (a rate probe: max(number, 4 s of "
                         "arrivals)).")
    parallel: int = derive(PerfConfig, "parallel", 1000, min_items=None, help="In a rate search, the most requests "
                           "in flight; the parallel search sets it per probe.")
    rate: float = derive(PerfConfig, "rate", -1.0, min_items=None, cli=Cli(hidden=True), ranges=(Range(const=-1),),
                         help="Set by the search (search='rate' with low/high): must stay -1.")
    num_runs: int = derive(PerfConfig, "num_runs", 1, cli=Cli(hidden=True), ranges=(Range(const=1),),
                           help="Must stay 1: the search sizes and repeats its probes itself (confidence, "
                           "max_repeats).")
    slo: dict[str, float] = derive(PerfConfig, "slo", help='Thresholds in ms on ttft_ms / tpot_ms / latency_ms, at '
                                   'least one, e.g. {"ttft_ms": 500}: a request meets the SLO when it succeeds and '
                                   'holds every one.')
    attainment: float = field(0.95, help="Share of a probe's requests that must succeed and meet every SLO "
                              "threshold for the probe to pass.", ranges=(Range(low=0, high=1, low_open=True),))
    search: str = field("parallel", help="What is searched: parallel (concurrent requests) | rate (arrivals per "
                        "second).", choices=SEARCH_AXES)
    low: float | None = field(None, help="Lowest value probed: concurrency or req/s (default 1).",
                              ranges=_POSITIVE)
    high: float | None = field(None, help="Highest value probed: concurrency or req/s (default 256).",
                               ranges=_POSITIVE)
    confidence: float = field(0.95, help="Confidence of the Wilson interval on each probe's attainment: a probe "
                              "passes when the interval's lower bound reaches the target and fails when its upper "
                              "bound is below it.", ranges=(Range(low=0.5, high=1, high_open=True),))
    max_repeats: int = field(3, help="Runs at most of a probe whose interval straddles the target (each "
                             "run twice the requests of the one before, pooled); then the point estimate decides.",
                             ranges=(Range(low=1, high=10),))
    precision: float = field(0.05, help="A rate search stops once the first failing rate is within this fraction "
                             "of the last passing one.", ranges=(Range(low=0, high=1, low_open=True),))
    max_probes: int = field(24, help="Budget: probe runs at most (bracketing, bisecting and repeats together).",
                            ranges=(Range(low=1, high=1000),))
    max_seconds: float = field(1800.0, help="Budget: seconds the whole search may take; the probe running when "
                               "it is spent is stopped.", ranges=_POSITIVE)
    early_stop: bool = field(True, help="Stop a probe as soon as it cannot pass (its attainment's upper bound is "
                             "below the target), e.g. an over-saturated server whose queue keeps growing.")
    auto_workers: bool = field(True, help="When a probe is client-bound, raise `workers` (up to this machine's "
                               "cores) and probe again; off (or at the cores): stop, reporting no capacity.")

    @rule("slo")
    def _slo_given(self) -> None:
        if not self.slo:
            raise ConfigError("slo", "needs at least one threshold for a capacity search, e.g. "
                              '{"ttft_ms": 500} (accepted: ' + ", ".join(SLO_METRICS) + ")")

    @rule("search", "low", "high")
    def _range(self) -> None:
        low, high = self.search_range()
        if self.search == "parallel":
            for name, value in (("low", low), ("high", high)):
                if not float(value).is_integer():
                    raise ConfigError(name, f"must be a whole number of concurrent requests, got {value:g}")
        if low > high:
            raise ConfigError("high", f"must be >= low ({low:g}), got {high:g}: the search range is inverted")

    def search_range(self) -> tuple[float, float]:
        """(low, high) of the search, defaults filled in."""
        low, high = _SEARCH_DEFAULTS[self.search]
        return (low if self.low is None else self.low, high if self.high is None else self.high)

    @classmethod
    def from_dict(cls, data: Any) -> CapacityConfig:
        """Build from a JSON-like dict: unknown fields and wrong types raise ConfigError."""
        return fields.from_dict(cls, data)

    def replace(self, **changes: Any) -> CapacityConfig:
        return fields.replace(self, changes)

    def perf_config(self, **changes: Any) -> PerfConfig:
        """The PerfConfig of one probe: every perf field as given, with `changes` (parallel, rate, number)."""
        names = fields.declared(PerfConfig)
        values = {k: v for k, v in dataclasses.asdict(self).items() if k in names}
        values.update(changes)
        return PerfConfig(**values)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"CapacityConfig({shown})"
