"""The simulated endpoint's serving model: finite capacity (max_batch, FIFO), decode slowing with load,
the prefix cache with its prefill cost, ignore_eos, and request capture.

Timing assertions are lower bounds only (a loaded machine can make things later, never earlier); the exact
facts come from the server's own counters.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import httpx
import pytest

from evalsvc.core.errors import ConfigError
from evalsvc.core.mock import MockConfig, MockServer
from evalsvc.core.mock._server import _PrefixCache
from tests._servers import start_mock


def chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}], "stream": True, **extra}


async def _timed(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[float, float, str]:
    """(seconds to the first content chunk, seconds to the end, streamed text) of one streamed chat request."""
    import json

    sent = time.perf_counter()
    first = None
    text = []
    async with session.post(url, json=body) as resp:
        assert resp.status == 200
        async for line in resp.content:
            if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0].get("delta", {}).get("content")
            if delta:
                if first is None:
                    first = time.perf_counter() - sent
                text.append(delta)
    assert first is not None
    return first, time.perf_counter() - sent, "".join(text)


async def _burst(url: str, bodies: list[dict[str, Any]], gap: float = 0.0) -> list[tuple[float, float, str]]:
    async with aiohttp.ClientSession() as session:
        tasks = []
        for body in bodies:
            tasks.append(asyncio.create_task(_timed(session, url, body)))
            await asyncio.sleep(gap)
        return await asyncio.gather(*tasks)


def _stats(root_url: str) -> dict[str, Any]:
    return httpx.get(root_url + "/mock/stats", trust_env=False).json()


def test_max_batch_queues_requests_fifo_and_their_ttft_includes_the_wait() -> None:
    # 2 slots; a request holds one for 60 + 4 x 10 = 100 ms. Of 4 requests sent together, 2 must wait for a
    # slot, so their TTFT is at least the 100 ms hold plus their own 60 ms.
    with start_mock(ttft_ms=60, itl_ms=10, output_tokens=5, max_batch=2) as mock:
        results = asyncio.run(_burst(mock.chat_url, [chat(f"q{i}") for i in range(4)], gap=0.02))
        stats = _stats(mock.root_url)
    assert stats["max_in_flight"] == 4  # all four were admitted to the HTTP server ...
    assert stats["queue"]["waited"] == 2  # ... but only two generated at once
    assert stats["queue"]["max_waiting"] == 2
    assert stats["queue"]["max_wait_ms"] >= 100 - 2 * 20 - 5  # the later ones waited for the first to finish
    ttfts = sorted(r[0] for r in results)
    assert ttfts[2] >= 0.06 + 0.1 - 0.04 - 0.005
    assert all(t >= 0.06 for t in ttfts)


def test_max_batch_serves_waiters_in_arrival_order() -> None:
    async def scenario() -> list[int]:
        async with MockServer(MockConfig(port=0, ttft_ms=30, itl_ms=0, output_tokens=1, max_batch=1)) as server:
            done: list[int] = []
            async with aiohttp.ClientSession() as session:
                async def one(i: int) -> None:
                    await _timed(session, server.chat_url, chat(f"q{i}"))
                    done.append(i)

                tasks = []
                for i in range(5):
                    tasks.append(asyncio.create_task(one(i)))
                    await asyncio.sleep(0.005)  # arrival order 0..4
                await asyncio.gather(*tasks)
            return done

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]


def test_decode_slows_with_the_requests_decoding_beside_it() -> None:
    # itl 50 ms, +40 ms per other request decoding. Alone, 5 tokens take 4 x 50 = 200 ms after the first.
    # Three sent together all decode by the second gap, so each takes at least 50 + 3 x (50 + 2 x 40) = 440 ms.
    with start_mock(ttft_ms=50, itl_ms=50, output_tokens=5, itl_per_request_ms=40) as mock:
        together = asyncio.run(_burst(mock.chat_url, [chat(f"q{i}") for i in range(3)]))
    assert min(total - first for first, total, _ in together) >= 0.3


def test_prefix_cache_hits_count_whole_blocks_and_prefill_charges_only_misses() -> None:
    prompt = " ".join(f"w{i}" for i in range(63))  # + the <user> token: 64 cache tokens = 4 blocks of 16
    other = " ".join(f"w{i}" for i in range(40)) + " " + " ".join(f"x{i}" for i in range(23))  # shares 2 blocks
    with start_mock(ttft_ms=0, itl_ms=0, output_tokens=2, prefill_ms_per_token=2, cache_tokens=4096,
                    cache_block_tokens=16) as mock:
        first = asyncio.run(_burst(mock.chat_url, [chat(prompt)]))[0]
        assert _stats(mock.root_url)["cache"] == {"hit_tokens": 0, "miss_tokens": 64, "hit_share": 0.0}
        asyncio.run(_burst(mock.chat_url, [chat(prompt)]))
        cache = _stats(mock.root_url)["cache"]
        assert (cache["hit_tokens"], cache["miss_tokens"]) == (64, 64)
        asyncio.run(_burst(mock.chat_url, [chat(other)]))
        cache = _stats(mock.root_url)["cache"]
        # <user> w0..w14 and w15..w30 are shared blocks; the third block (w31..w46) differs at x0
        assert (cache["hit_tokens"], cache["miss_tokens"]) == (64 + 32, 64 + 32)
        assert cache["hit_share"] == pytest.approx(96 / 192)
    assert first[0] >= 64 * 0.002  # the cold prompt paid its prefill


def test_prefix_cache_evicts_least_recently_used_blocks() -> None:
    cache = _PrefixCache(capacity_tokens=32, block=16)  # two blocks
    a, b = cache.hashes(["a"] * 16), cache.hashes(["b"] * 16)
    c = cache.hashes(["c"] * 16)
    cache.add(a)
    cache.add(b)
    assert cache.hit_blocks(a) == 1  # a is now the most recently used
    cache.add(c)  # evicts b
    assert (cache.hit_blocks(a), cache.hit_blocks(b), cache.hit_blocks(c)) == (1, 0, 1)
    # a partial block is never cached; a chained block needs its prefix
    assert cache.hashes(["a"] * 15) == []
    assert cache.hit_blocks(cache.hashes(["z"] * 16 + ["a"] * 16)) == 0


def test_ignore_eos_generates_max_tokens_and_min_tokens_raises_the_length() -> None:
    with start_mock(ttft_ms=0, itl_ms=0, output_tokens=3) as mock:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 7}
        plain = httpx.post(mock.chat_url, json=body, trust_env=False).json()
        forced = httpx.post(mock.chat_url, json={**body, "ignore_eos": True}, trust_env=False).json()
        raised = httpx.post(mock.chat_url, json={**body, "min_tokens": 5}, trust_env=False).json()
        bad = httpx.post(mock.chat_url, json={**body, "ignore_eos": "yes"}, trust_env=False)
    assert plain["usage"]["completion_tokens"] == 3 and plain["choices"][0]["finish_reason"] == "stop"
    assert forced["usage"]["completion_tokens"] == 7 and forced["choices"][0]["finish_reason"] == "length"
    assert raised["usage"]["completion_tokens"] == 5
    assert bad.status_code == 400 and "ignore_eos" in bad.text


def test_capture_requests_keeps_every_body_in_arrival_order() -> None:
    with start_mock(ttft_ms=0, itl_ms=0, output_tokens=1, capture_requests=True) as mock:
        bodies = [chat(f"question {i}", max_tokens=i + 1) for i in range(3)]
        for body in bodies:
            httpx.post(mock.chat_url, json=body, trust_env=False)
        assert httpx.get(mock.root_url + "/mock/requests", trust_env=False).json() == bodies
        httpx.post(mock.root_url + "/mock/reset", trust_env=False)
        assert httpx.get(mock.root_url + "/mock/requests", trust_env=False).json() == []
    with start_mock(ttft_ms=0) as mock:
        off = httpx.get(mock.root_url + "/mock/requests", trust_env=False)
    assert off.status_code == 404 and "capture_requests" in off.text


def test_captured_from_the_library() -> None:
    async def scenario() -> list[Any]:
        async with MockServer(MockConfig(port=0, ttft_ms=0, itl_ms=0, capture_requests=True)) as server:
            async with aiohttp.ClientSession() as session:
                await _timed(session, server.chat_url, chat("hello"))
            return server.captured()

    assert asyncio.run(scenario()) == [chat("hello")]


@pytest.mark.parametrize(("options", "field"), [
    ({"max_batch": -1}, "max_batch"),
    ({"itl_per_request_ms": -1}, "itl_per_request_ms"),
    ({"cache_tokens": 8, "cache_block_tokens": 16}, "cache_tokens"),
    ({"cache_block_tokens": 0}, "cache_block_tokens"),
    ({"prefill_ms_per_token": "fast"}, "prefill_ms_per_token"),
])
def test_bad_serving_options_name_the_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        MockConfig(**options)
    assert info.value.field == field
