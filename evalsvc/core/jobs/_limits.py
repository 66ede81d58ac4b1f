"""What one client's job may ask of the service: the operator's limits, checked before a job is admitted.

The library and the CLI run what their (local) user asks; a service runs what anyone who can reach it asks,
and perf jobs run one at a time. So the service bounds every size a request chooses (requests, concurrency,
tokens, warm-up, the length of texts it stores) and the wall time of each job. A request beyond a limit is
refused with a ConfigError naming the field, the limit and the `evalsvc service` option that raises it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

import orjson

from ..config import CapacityConfig, EvalConfig, PerfConfig
from ..errors import ConfigError

C = PerfConfig | EvalConfig


@dataclass(frozen=True)
class ServiceLimits:
    """Maximums for a job submitted to the service. Each field has an `evalsvc service` option of the
    same name in kebab case (`max_number` -> `--max-number`)."""

    max_number: int = 100_000
    """Measured requests per perf run (each value of a sweep); warm-up requests come on top."""
    max_parallel: int = 1_000
    """Requests in flight: perf `parallel`, eval `eval_batch_size`."""
    max_prompt_tokens: int = 131_072
    """Perf `prompt_tokens`."""
    max_tokens: int = 131_072
    """Output tokens requested: perf `max_tokens` / `min_tokens`, eval `generation_config.max_tokens`."""
    max_warmup: int = 1_000
    """Perf warm-up requests per run."""
    max_runs: int = 64
    """Runs in one perf sweep."""
    max_job_seconds: float = 7_200.0
    """Wall time of one job once running. Perf `duration` and eval `timeout` may not exceed it;
    an eval request without a `timeout` gets this one; a job still running after it is stopped (failed,
    category timeout)."""
    max_text: int = 1_024
    """Characters in a free-text field the service stores and lists (model names, URLs, header values)."""
    max_body_json: int = 65_536
    """Bytes of the JSON of `extra_body`, `headers` and `dataset_args`."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f.name, f"must be a number > 0, got {value!r}")

    @staticmethod
    def option(name: str) -> str:
        """The `evalsvc service` option that sets limit `name`."""
        return "--" + name.replace("_", "-")

    def apply(self, config: C) -> C:
        """Check `config` against the limits; return it, with an eval job's `timeout` set when it had none.

        Raises:
            ConfigError: a field exceeds a limit (the message names the limit and its option).
        """
        self._text("model", config.model)
        if isinstance(config, PerfConfig):
            self._text("url", config.url)
            runs = config.runs()
            self._at_most("number", len(runs), "max_runs", what="runs in the sweep")
            for _, number, parallel, _ in runs:
                self._at_most("number", number, "max_number")
                self._at_most("parallel", parallel, "max_parallel")
            self._at_most("prompt_tokens", config.prompt_tokens, "max_prompt_tokens")
            self._at_most("max_tokens", config.max_tokens, "max_tokens")
            if config.prompt_tokens_max is not None:
                self._at_most("prompt_tokens_max", config.prompt_tokens_max, "max_prompt_tokens")
            if config.prefix_tokens:  # a prompt is the shared prefix and then its own words
                longest = max(config.prompt_tokens, config.prompt_tokens_max or 0)
                self._at_most("prefix_tokens", config.prefix_tokens + longest, "max_prompt_tokens",
                              what="prefix_tokens + prompt length")
            if config.max_tokens_max is not None:
                self._at_most("max_tokens_max", config.max_tokens_max, "max_tokens")
            if config.min_tokens is not None:
                self._at_most("min_tokens", config.min_tokens, "max_tokens")
            self._at_most("warmup", config.warmup, "max_warmup")
            if config.duration is not None:
                self._at_most("duration", config.duration, "max_job_seconds")
            for name in ("headers", "extra_body"):
                self._json(name, getattr(config, name))
            for key, value in (config.headers or {}).items():
                self._text(f"headers.{key[:40]}", value)
            if isinstance(config, CapacityConfig):  # the search's own sizes: its concurrency, its probes
                if config.search == "parallel":
                    self._at_most("high", config.search_range()[1], "max_parallel")
                self._at_most("max_seconds", config.max_seconds, "max_job_seconds")
            return config
        self._text("api_url", config.api_url)
        self._at_most("eval_batch_size", config.eval_batch_size, "max_parallel")
        max_tokens = config.generation_config.get("max_tokens")
        if max_tokens is not None:
            self._at_most("generation_config.max_tokens", max_tokens, "max_tokens")
        self._json("generation_config", config.generation_config)
        self._json("dataset_args", config.dataset_args)
        if config.timeout is None:
            return config.replace(timeout=float(self.max_job_seconds))
        self._at_most("timeout", config.timeout, "max_job_seconds")
        return config

    def _at_most(self, field: str, value: Any, limit: str, *, what: str | None = None) -> None:
        bound = getattr(self, limit)
        if value > bound:
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            raise ConfigError(field, f"{what + ' ' if what else ''}{shown} exceeds the service's limit {limit} = "
                              f"{bound:g} (the operator sets it with evalsvc service {self.option(limit)})")

    def _text(self, field: str, value: Any) -> None:
        if isinstance(value, str) and len(value) > self.max_text:
            raise ConfigError(field, f"is {len(value)} characters; the service's limit max_text is {self.max_text} "
                              f"(evalsvc service {self.option('max_text')})")

    def _json(self, field: str, value: Any) -> None:
        if not value:
            return
        size = len(orjson.dumps(value, default=str))
        if size > self.max_body_json:
            raise ConfigError(field, f"is {size} bytes of JSON; the service's limit max_body_json is "
                              f"{self.max_body_json} (evalsvc service {self.option('max_body_json')})")


LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
"""Link-local networks: cloud metadata services (169.254.169.254) live there; refused unless allowed."""


@dataclass(frozen=True)
class TargetPolicy:
    """Which hosts the service may send requests to. The service calls any URL a client gives it (that is
    its job), so the operator may restrict targets to hosts and networks (`--allow-target`); link-local
    addresses (cloud metadata services) are refused unless an entry allows them explicitly.

    Args:
        allowed: host names ("llm.internal"), addresses ("10.0.0.5") or networks ("10.0.0.0/8"); empty:
            any host except link-local ones.
    """

    allowed: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for entry in self.allowed:
            if not isinstance(entry, str) or not entry.strip() or ("/" in entry and _network(entry) is None):
                raise ConfigError("allow_target", f"must be a host name, an address or a network such as "
                                  f"10.0.0.0/8, got {entry!r}")

    def check(self, field: str, url: str) -> None:
        """Raise ConfigError unless `url`'s host may be called. Resolves host names (blocking: call it in a
        thread from async code); a name that does not resolve passes unless there is an allow list."""
        try:
            host = (urlsplit(url).hostname or "").lower().rstrip(".")
        except ValueError as exc:  # e.g. a bracketed address that is not one
            raise ConfigError(field, f"has no valid host ({exc})") from None
        _check_host(field, host)
        names = {e.strip().lower().rstrip(".") for e in self.allowed if _network(e) is None}
        networks = [n for n in (_network(e) for e in self.allowed) if n is not None]
        if host in names:
            return
        try:
            addresses = {ipaddress.ip_address(host)}
        except ValueError:
            try:
                addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0])
                             for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
            except (OSError, UnicodeError, ValueError):
                addresses = set()
        for address in addresses:
            plain = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped \
                else address
            explicitly = any(plain in n for n in networks if n.version == plain.version)
            if explicitly:
                continue
            if any(plain in n for n in LINK_LOCAL if n.version == plain.version):
                raise ConfigError(field, f"host {host!r} is a link-local address ({plain}), where cloud metadata "
                                  "services answer; the service refuses it unless the operator allows it "
                                  "(evalsvc service --allow-target)")
            if self.allowed:
                raise ConfigError(field, f"host {host!r} ({plain}) is not among the targets this service may call "
                                  "(evalsvc service --allow-target)")
        if self.allowed and not addresses:
            raise ConfigError(field, f"host {host!r} does not resolve and is not among the targets this service "
                              "may call (evalsvc service --allow-target)")


def _check_host(field: str, host: str) -> None:
    """A host name the resolver can take (IDNA, letters, digits, '-', '.') or an address literal."""
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii") if host else ""
    except UnicodeError:
        ascii_host = ""
    if not ascii_host or not re.fullmatch(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*",
                                          ascii_host.lower()):
        raise ConfigError(field, f"has no valid host name (got {host[:80]!r})")


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        return None
