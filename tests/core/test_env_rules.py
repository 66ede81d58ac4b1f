"""The rules evalsvc takes from its environment, each decided in one place: the cache folder
(core/_paths.py), the proxy for a URL (core/_net.py) and the mode of the files it writes (core/_io.py)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from evalsvc import EndpointUnreachable, EvalConfig, PerfConfig, run_perf
from evalsvc.core._io import AtomicLines, write_atomic, write_json
from evalsvc.core._net import aiohttp_proxy, exempt_if_direct, host_port, is_loopback, proxy_for
from evalsvc.core._paths import cache_dir
from evalsvc.core.eval import plan_eval
from evalsvc.core.eval._preflight import preflight
from evalsvc.core.perf.datasets import _openqa
from tests._evaldata import gsm8k_row, write_local_copy
from tests._servers import QuietHandler, serve_http

PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
              "no_proxy", "NO_PROXY", "REQUEST_METHOD")


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


@contextmanager
def stub_proxy(body: bytes) -> Iterator[tuple[str, list[tuple[str, str, str | None]]]]:
    """A forward proxy on 127.0.0.1 that answers every request itself with `body`.

    Yields its URL and what it saw: (method, request target, Proxy-Authorization header).
    A request that went through it has an absolute URL as its target.
    """
    seen: list[tuple[str, str, str | None]] = []

    class Handler(QuietHandler):
        def _answer(self) -> None:
            self.read_body()
            seen.append((self.command, self.path, self.headers.get("Proxy-Authorization")))
            self.answer(body)

        do_GET = do_POST = _answer

    with serve_http(Handler) as url:
        yield url, seen


# --- the cache folder ---------------------------------------------------------------------------------------


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EVALSVC_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == tmp_path / "home" / ".cache" / "evalsvc"
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # empty counts as unset
    assert cache_dir() == tmp_path / "home" / ".cache" / "evalsvc"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "evalsvc"
    monkeypatch.setenv("EVALSVC_CACHE_DIR", "~/mine")
    assert cache_dir() == tmp_path / "home" / "mine"


def test_every_cache_follows_the_one_rule(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Before: the openqa file ignored XDG_CACHE_HOME while the eval caches honoured it (and read
    # another variable, EVALSVC_CACHE). Both now live under cache_dir(), whichever way it is set.
    monkeypatch.delenv("EVALSVC_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    write_local_copy(tmp_path / "data" / "gsm8k", {"main": {"test": [gsm8k_row("[A]", "1+1?", 2)], "train": []}})
    config = EvalConfig(model="m", api_url="http://127.0.0.1:8000/v1", datasets=["gsm8k"],
                        dataset_dir=str(tmp_path / "data"), dataset_args={"gsm8k": {"few_shot_num": 0}})
    for expected in (tmp_path / "xdg" / "evalsvc", tmp_path / "explicit"):
        if expected.name == "explicit":
            monkeypatch.setenv("EVALSVC_CACHE_DIR", str(expected))
        assert _openqa.cache_path() == expected / "perf" / "HC3-Chinese" / "open_qa.jsonl"
        (planned,) = plan_eval(config).datasets
        assert planned.hf_cache is not None and Path(planned.hf_cache).parent == expected / "datasets"


# --- the proxy rule -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "api.localhost", "127.0.0.1", "127.3.2.1", "::1",
                                  "[::1]", "::ffff:127.0.0.1"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["example.com", "10.0.0.1", "128.0.0.1", "::2", "localhost.example.com"])
def test_not_loopback_hosts(host: str) -> None:
    assert not is_loopback(host)


def test_proxy_for_follows_the_variables(no_proxy_env: pytest.MonkeyPatch) -> None:
    assert proxy_for("https://api.example.com/v1") is None  # nothing set: direct
    no_proxy_env.setenv("HTTPS_PROXY", "proxy.corp:3128")
    no_proxy_env.setenv("HTTP_PROXY", "http://plain.corp:8080")
    no_proxy_env.setenv("NO_PROXY", ".internal, exact.example.com,ported.example.com:8443,10.0.0.0/8,"
                                    "*.wild.example,2001:db8::5,[2001:db8::6]:8443,default.example.com:443")
    assert proxy_for("https://api.example.com/v1") == "http://proxy.corp:3128"  # scheme added
    assert proxy_for("http://api.example.com/v1") == "http://plain.corp:8080"  # per scheme
    for direct in ("http://127.0.0.1:8000/v1", "http://localhost:8000", "http://[::1]:8000/v1",
                   "https://model.internal/v1", "https://exact.example.com/", "https://sub.exact.example.com/",
                   "https://ported.example.com:8443/v1", "http://10.1.2.3:8000/v1", "https://a.wild.example/",
                   "https://[2001:db8::5]/v1", "https://[2001:db8::6]:8443/v1", "https://default.example.com/v1"):
        assert proxy_for(direct) is None, direct
    assert proxy_for("https://ported.example.com:9443/v1") == "http://proxy.corp:3128"  # another port
    assert proxy_for("https://notexact.example.com/") == "http://proxy.corp:3128"  # a suffix, not a substring
    assert proxy_for("http://11.1.2.3/") == "http://plain.corp:8080"
    assert proxy_for("https://[2001:db8::6]/v1") == "http://proxy.corp:3128"  # only its port 8443 is exempt
    assert proxy_for("http://default.example.com/v1") == "http://plain.corp:8080"  # port 80, not 443
    no_proxy_env.setenv("no_proxy", "*")  # the lower-case spelling wins
    assert proxy_for("https://api.example.com/v1") is None


def test_all_proxy_is_the_fallback(no_proxy_env: pytest.MonkeyPatch) -> None:
    no_proxy_env.setenv("ALL_PROXY", "http://user%40corp:s3cret@proxy.corp:3128")
    assert proxy_for("https://api.example.com/") == "http://user%40corp:s3cret@proxy.corp:3128"
    assert aiohttp_proxy("https://api.example.com/") == {"proxy": "http://user%40corp:s3cret@proxy.corp:3128"}
    assert aiohttp_proxy("http://127.0.0.1:1/") == {}


def test_eval_preflight_goes_through_the_proxy(no_proxy_env: pytest.MonkeyPatch) -> None:
    # The regression: the preflight connected directly while evalscope's client used HTTPS_PROXY, so the
    # preflight passed and every sample then failed through the proxy. Now both take the same route.
    answer = json.dumps({"choices": [{"message": {"role": "assistant", "content": "OK"}}]}).encode()
    with stub_proxy(answer) as (proxy, seen):
        no_proxy_env.setenv("HTTP_PROXY", proxy.replace("http://", "http://alice:pw@"))
        config = EvalConfig(model="m", api_url="http://model.example.invalid/v1", datasets=["gsm8k"], retries=0)
        checked = asyncio.run(preflight(config))
    assert checked["body"]["choices"][0]["message"]["content"] == "OK"
    # /models first (the stub's answer is no model list), then the short generation: both through the proxy
    assert [(m, t) for m, t, _ in seen] == [("GET", "http://model.example.invalid/v1/models"),
                                            ("POST", "http://model.example.invalid/v1/chat/completions")]
    assert {auth for *_, auth in seen} == {"Basic YWxpY2U6cHc="}  # alice:pw, sent to the proxy only


def test_a_preflight_failure_names_the_proxy_without_its_credentials(no_proxy_env: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    no_proxy_env.setenv("HTTPS_PROXY", f"http://alice:s3cret-pw@127.0.0.1:{port}")
    config = EvalConfig(model="m", api_url="https://model.example.invalid/v1", datasets=["gsm8k"], retries=0)
    with pytest.raises(EndpointUnreachable) as info:
        asyncio.run(preflight(config))
    assert f"through the proxy http://127.0.0.1:{port}" in str(info.value)
    assert "s3cret-pw" not in str(info.value) and "alice" not in str(info.value)


def test_eval_preflight_reaches_loopback_directly(no_proxy_env: pytest.MonkeyPatch, mock_server: Any) -> None:
    with stub_proxy(b"{}") as (proxy, seen):
        no_proxy_env.setenv("HTTP_PROXY", proxy)
        config = EvalConfig(model="mock-model", api_url=mock_server.base_url, datasets=["gsm8k"], retries=0)
        checked = asyncio.run(preflight(config))
    assert checked == {"checked": "models", "models": ["mock-model"]} and seen == []


def test_evalscope_client_is_told_what_the_rule_reaches_directly(no_proxy_env: pytest.MonkeyPatch,
                                                                 mock_server: Any) -> None:
    # evalscope's OpenAI client (httpx) would proxy a loopback endpoint; the worker names the host in NO_PROXY.
    import httpx

    with stub_proxy(b'{"via": "proxy"}') as (proxy, seen):
        no_proxy_env.setenv("HTTP_PROXY", proxy)
        no_proxy_env.setenv("NO_PROXY", "other.example")
        exempt_if_direct(mock_server.base_url)
        # both spellings hold the whole list: a lower-case no_proxy of the host alone would hide NO_PROXY
        assert os.environ["NO_PROXY"] == os.environ["no_proxy"] == "other.example,127.0.0.1"
        assert proxy_for("http://other.example/") is None
        with httpx.Client(trust_env=True) as client:
            assert client.get(f"{mock_server.base_url}/models").json().get("via") != "proxy"
        exempt_if_direct("http://api.example.com/v1")  # proxied by the rule: left alone
        assert os.environ["NO_PROXY"] == "other.example,127.0.0.1"
    assert seen == []


def test_exempt_if_direct_changes_nothing_without_a_proxy(no_proxy_env: pytest.MonkeyPatch) -> None:
    exempt_if_direct("http://127.0.0.1:8000/v1")
    assert "NO_PROXY" not in os.environ and "no_proxy" not in os.environ


def test_openqa_download_goes_through_the_proxy(no_proxy_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    body = b'{"question": "why is the sky blue?"}\n{"question": "what is tea?"}\n'
    no_proxy_env.setenv("EVALSVC_CACHE_DIR", str(tmp_path / "cache"))
    no_proxy_env.setenv("MODELSCOPE_ENDPOINT", "http://hub.example.invalid")
    with stub_proxy(body) as (proxy, seen):
        no_proxy_env.setenv("HTTP_PROXY", proxy)
        path, origin = _openqa.locate(PerfConfig(model="m", url="http://127.0.0.1:9/v1/chat/completions"))
    assert origin == "downloaded" and path.read_bytes() == body
    assert [t for _, t, _ in seen] == [_openqa.hub_url()]


# --- file modes ---------------------------------------------------------------------------------------------


@contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_honour_the_umask(tmp_path: Path, mask: int, expected: int) -> None:
    with umask(mask):
        a = write_atomic(tmp_path / "a.txt", "x")
        b = write_json(tmp_path / "b.json", {"k": 1})
        lines = AtomicLines(tmp_path / "c.jsonl")
        lines.write_many([{"i": 1}])
        c = lines.close()
        private = write_json(tmp_path / "p.json", {}, mode=0o600)
    assert (mode(a), mode(b), mode(c)) == (expected,) * 3
    assert mode(private) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json", "c.jsonl", "p.json"]


def test_perf_outputs_are_readable_like_other_files(mock_server: Any, tmp_path: Path) -> None:
    # The regression: every output was 0600 whatever the umask, unlike evalscope's files beside them.
    with umask(0o022):
        result = run_perf(PerfConfig(model="mock-model", url=mock_server.chat_url, dataset="random",
                                     prompt_tokens=8, max_tokens=8, number=3, work_dir=str(tmp_path)))
    files = [p for p in Path(result.output_dir).iterdir() if p.is_file()]
    assert {p.name for p in files} >= {"config.json", "summary.json", "report.txt"}
    assert any(p.suffix == ".jsonl" for p in files)
    assert {p.name: mode(p) for p in files} == {p.name: 0o644 for p in files}


def test_evaluation_reaches_a_loopback_endpoint_directly_with_a_proxy_set(
        no_proxy_env: pytest.MonkeyPatch, mock_server: Any, tmp_path: Path) -> None:
    # evalscope's client alone would send every sample to HTTP_PROXY (httpx proxies loopback hosts);
    # the dataset worker names the endpoint in NO_PROXY first, as the preflight's rule says.
    from evalsvc import run_eval

    write_local_copy(tmp_path / "data" / "gsm8k", {"main": {"test": [gsm8k_row("[A]", "1+1?", 2),
                                                                     gsm8k_row("[B]", "2+2?", 4)]}})
    with stub_proxy(b'{"error": "a proxy answered"}') as (proxy, seen):
        no_proxy_env.setenv("HTTP_PROXY", proxy)
        result = run_eval(EvalConfig(model="mock-model", api_url=mock_server.base_url, datasets=["gsm8k"],
                                     dataset_dir=str(tmp_path / "data"), dataset_args={"gsm8k": {"few_shot_num": 0}},
                                     retries=0, work_dir=str(tmp_path / "out")))
    (gsm8k,) = result.datasets.values()
    assert (gsm8k.requested, gsm8k.scored, gsm8k.errored) == (2, 2, 0), gsm8k.error
    assert seen == []


def test_host_port_gives_the_scheme_default_where_the_url_names_no_port() -> None:
    # One rule for the client's connection, the proxy decision and the preflight's "cannot connect to" line.
    assert host_port("https://api.example.com/v1/chat/completions") == ("api.example.com", 443)
    assert host_port("http://Example.COM/v1") == ("example.com", 80)
    assert host_port("http://[::1]:8080/v1") == ("::1", 8080)
    assert host_port("http://127.0.0.1:99999/v1") == ("127.0.0.1", 80)  # not a port: the default
