"""Each config field is declared once: the CLI flags, the JSON Schema and validation all come from it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import evalsvc.cli._perf as perf_cli
from evalsvc.cli import app
from evalsvc.cli._options import config_parameters, config_values
from evalsvc.core import fields
from evalsvc.core.config import EvalConfig, PerfConfig
from evalsvc.core.errors import ConfigError
from evalsvc.core.fields import Range, field, json_schema
from evalsvc.core.jobs import PathPolicy
from evalsvc.http._openapi import build_openapi

ROOT = Path(__file__).resolve().parents[2]
URL = "http://127.0.0.1:9/v1/chat/completions"


def _help(command: str) -> str:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(("command", "cls"), [("perf", PerfConfig), ("eval", EvalConfig)])
def test_every_field_is_a_flag_and_a_schema_property_with_the_same_help(command: str, cls: type) -> None:
    text = _help(command)
    schemas = build_openapi(auth=False)["components"]["schemas"]
    props = schemas["PerfRequest" if cls is PerfConfig else "EvalRequest"]["properties"]
    for f in dataclasses.fields(cls):
        d = fields.declared(cls)[f.name]
        flag = "--header" if f.name == "headers" else "--" + f.name.replace("_", "-")
        assert re.search(rf"{re.escape(flag)}\b", text), f"{flag} missing from `evalsvc {command} --help`"
        assert f.name in props, f"{f.name} missing from the schema"
        assert d.spec.help.split(".")[0][:30] in " ".join(text.split()), f"help of {f.name} not shown"
        if f.name not in ("api_key", "work_dir"):  # the service words these two for its own context
            assert props[f.name]["description"] == d.spec.help
    if cls is PerfConfig:
        assert "--no-preflight" in text and "--no-stream" in text and "EVALSVC_API_KEY" in text


def test_a_new_field_needs_no_other_edit_to_be_a_flag_a_schema_property_and_validated() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Wider(PerfConfig):
        burst: int = field(3, help="Requests sent together.", ranges=(Range(low=1, high=10),))
        tags: list[str] | None = field(None, help="Labels.", min_items=1, text=True)

        def __post_init__(self) -> None:
            fields.validate(self)

    params = {p.name: p for p in config_parameters(Wider)}
    assert "burst" in params and "tags" in params
    schema = json_schema(Wider)["properties"]
    assert schema["burst"] == {"type": "integer", "minimum": 1, "maximum": 10, "default": 3,
                               "description": "Requests sent together."}
    assert schema["tags"]["anyOf"][0]["minItems"] == 1
    with pytest.raises(ConfigError, match="burst: must be <= 10"):
        Wider(model="m", url=URL, burst=11)
    assert config_values(Wider, {"model": "m", "url": URL, "burst": 5, "tags": ["a,b", "c"]})["tags"] == \
        ["a", "b", "c"]


def _perf_config(monkeypatch: pytest.MonkeyPatch, *args: str, env: dict[str, str] | None = None) -> PerfConfig:
    seen: list[PerfConfig] = []

    def fake_run(config: PerfConfig, *, quiet: bool) -> Any:
        seen.append(config)
        raise SystemExit(0)

    monkeypatch.setattr(perf_cli, "_run", fake_run)
    result = CliRunner().invoke(app, ["perf", "--model", "m", "--url", URL, *args], env=env)
    assert result.exit_code == 0, result.output
    (config,) = seen
    return config


def test_perf_flags_build_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _perf_config(monkeypatch, "--number", "10,20", "--number", "30", "--parallel", "1,2,4",
                          "--header", "X-Team: a:b", "--header", "X-Trace: 1", "--no-stream", "--no-preflight",
                          "--slo", '{"ttft_ms": 500}', "--extra-body", '{"top_k": 5}', "--rate", "2.5",
                          "--min-tokens", "8", "--duration", "30", env={"EVALSVC_API_KEY": "sk-env-123"})
    assert config.number == [10, 20, 30] and config.parallel == [1, 2, 4] and config.rate == 2.5
    assert config.headers == {"X-Team": "a:b", "X-Trace": "1"}
    assert config.stream is False and config.preflight is False
    assert config.slo == {"ttft_ms": 500.0} and config.extra_body == {"top_k": 5}
    assert config.api_key == "sk-env-123" and config.min_tokens == 8 and config.duration == 30.0


def test_perf_flags_left_out_keep_the_declared_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _perf_config(monkeypatch)
    assert config == PerfConfig(model="m", url=URL)


@pytest.mark.parametrize(("args", "message"), [
    (["--header", "no colon"], "header: expected 'Name: value'"),
    (["--header", "Bad Name: x"], "headers: invalid header name 'Bad Name'"),
    (["--number", "1,x"], "number: expected an integer, got 'x'"),
    (["--extra-body", "[1"], "extra_body: is not valid JSON"),
    (["--workers", "300"], "workers: must be <= 256, got 300"),
])
def test_perf_flag_errors_name_the_field(monkeypatch: pytest.MonkeyPatch, args: list[str], message: str) -> None:
    monkeypatch.setattr(perf_cli, "_run", lambda config, quiet: pytest.fail("must not run"))
    result = CliRunner().invoke(app, ["perf", "--model", "m", "--url", URL, *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_an_http_eval_body_is_validated_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[str] = []
    full: list[str] = []
    check, validate = fields.check, fields.validate
    monkeypatch.setattr(fields, "check", lambda name, *a, **k: calls.append(name) or check(name, *a, **k))
    monkeypatch.setattr(fields, "validate", lambda obj: full.append(type(obj).__name__) or validate(obj))
    policy = PathPolicy(tmp_path / "outputs")
    config = policy.config_from_body("eval", {"model": "m", "api_url": "http://h/v1", "datasets": ["gsm8k"],
                                              "limit": 3, "generation_config": {"top_p": 0.5}})
    assert full == ["EvalConfig"]  # one full validation; confining the paths re-checks only what it changed
    top = [name for name in calls if "." not in name]
    assert sorted(set(top)) == sorted(f.name for f in dataclasses.fields(EvalConfig))
    twice = {name for name in top if top.count(name) > 1}
    assert twice <= {"work_dir", "dataset_args"}, twice
    assert config.work_dir.startswith(str(tmp_path)) and config.generation_config["top_p"] == 0.5


def test_replace_rechecks_changed_fields_and_their_rules() -> None:
    config = PerfConfig(model="m", url=URL, max_tokens=100)
    with pytest.raises(ConfigError, match="min_tokens: must be <= max_tokens"):
        config.replace(min_tokens=200)
    with pytest.raises(ConfigError, match="workers: must be >= 1"):
        config.replace(workers=0)
    with pytest.raises(ConfigError, match="bogus: unknown field"):
        config.replace(bogus=1)
    assert config.replace(number=[1, 2]).runs()[1][1] == 2 and config.number is None and config.runs()[0][1] == 1000


def test_to_dict_and_repr_hide_secrets() -> None:
    config = PerfConfig(model="m", url="http://u:pw@h/v1/chat/completions", api_key="sk-secret-value",
                        headers={"Authorization": "Bearer sk-h", "X-Trace": "1"}, extra_body={"api_key": "k2"})
    shown = repr(config) + str(config.to_dict())
    for secret in ("sk-secret-value", "pw", "sk-h", "k2"):
        assert secret not in shown
    assert config.to_dict(redact=False)["api_key"] == "sk-secret-value"
    config = EvalConfig(model="m", api_url="http://h/v1", datasets=["gsm8k"], api_key="sk-x")
    assert config.to_dict()["api_key"] == "***"


def test_generation_options_are_declared_like_fields() -> None:
    with pytest.raises(ConfigError, match=r"generation_config.presence_penalty: must be <= 2, got 5"):
        EvalConfig(model="m", api_url="http://h/v1", datasets=["gsm8k"], generation_config={"presence_penalty": 5})
    with pytest.raises(ConfigError, match=r"generation_config.temperature: is required"):
        EvalConfig(model="m", api_url="http://h/v1", datasets=["gsm8k"], generation_config={"temperature": None})
    props = build_openapi(auth=False)["components"]["schemas"]["EvalRequest"]["properties"]["generation_config"]
    assert props["properties"]["presence_penalty"]["anyOf"][0]["maximum"] == 2
    assert props["additionalProperties"] is False


@pytest.mark.parametrize("url", ["http://[::1]:8000/v1", "http://host:65535/v1", "HTTPS://Example.com/v1/"])
def test_base_urls_the_schema_accepts_are_valid(url: str) -> None:
    pattern = build_openapi(auth=False)["components"]["schemas"]["EvalRequest"]["properties"]["api_url"]["pattern"]
    assert re.search(pattern, url)
    EvalConfig(model="m", api_url=url, datasets=["gsm8k"])


@pytest.mark.parametrize("url", ["http://[0]/v1", "http://host:65536/v1", "http://ho st/v1", "ftp://h/v1",
                                 "http:///v1"])
def test_urls_the_schema_refuses_are_refused(url: str) -> None:
    pattern = build_openapi(auth=False)["components"]["schemas"]["EvalRequest"]["properties"]["api_url"]["pattern"]
    assert not re.search(pattern, url)
    with pytest.raises(ConfigError, match="api_url: must be an http"):
        EvalConfig(model="m", api_url=url, datasets=["gsm8k"])


def test_readme_table_lists_every_perf_field_with_its_default() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| field | default | meaning |"):]
    table = table[: table.index("\n\n")]
    named = set(re.findall(r"`(\w+)`", "\n".join(row.split("|")[1] for row in table.splitlines()[2:])))
    assert named == {f.name for f in dataclasses.fields(PerfConfig)}


@pytest.mark.parametrize(("url", "ok"), [
    ("http://[::ffff:169.254.169.254]/v1", True), ("http://[64:ff9b::1.2.3.4]:8000/v1", True),
    ("http://[1:2:3:4:5:6:1.2.3.4]/v1", True), ("http://[::1]:8000/v1", True),
    ("http://[2bC6:F2:a94a:ccD:Cf04::0:250.250.212.255]/v1", False),  # 9 groups: not an address
    ("http://[1.2.3.4]/v1", False), ("http://[::ffff:999.1.1.1]/v1", False),
])
def test_ipv6_literals_with_an_ipv4_tail_are_read_exactly(url: str, ok: bool) -> None:
    # the same pattern is the schema's, so the library and /openapi.json agree with Python's own parser
    import ipaddress
    from urllib.parse import urlsplit

    from evalsvc.core.fields import url_pattern

    assert bool(re.search(url_pattern("http"), url)) is ok
    if ok:
        ipaddress.ip_address(urlsplit(url).hostname or "")
