"""A tiny OpenAI-style endpoint on 127.0.0.1 that guards its door: for the perf preflight tests.

`start_gate(key=...)` serves POST /v1/chat/completions (streamed or not) only to requests carrying
`Authorization: Bearer <key>`; others get 401 with an OpenAI error body that quotes the key they sent (as
real providers do: the client must not repeat it). Every other path is aiohttp's own 404. It counts every
request it receives, by path, so a test can tell how many requests a run really sent.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Gate:
    root_url: str
    """http://127.0.0.1:PORT"""
    hang: bool = False
    """Never answer a chat request (until the gate closes)."""
    hits: Counter[str] = field(default_factory=Counter)
    """Requests received, by path."""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    """The JSON body of every chat request, in arrival order."""
    closed: bool = False

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    @property
    def chat_url(self) -> str:
        return self.root_url + "/v1/chat/completions"

    @property
    def total(self) -> int:
        return sum(self.hits.values())


def _app(gate: Gate, key: str | None) -> web.Application:
    @web.middleware
    async def count(request: web.Request, handler):  # type: ignore[no-untyped-def]
        gate.hits[request.path] += 1
        return await handler(request)

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        gate.bodies.append(body)
        while gate.hang and not gate.closed:
            await asyncio.sleep(0.05)
        if key is not None and request.headers.get("Authorization") != f"Bearer {key}":
            sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
            said = f"Incorrect API key provided: {sent}." if sent else "You didn't provide an API key."
            return web.json_response({"error": {"message": said, "type": "invalid_request_error",
                                                "code": "invalid_api_key"}}, status=401)
        if not body.get("stream"):
            return web.json_response({"id": "x", "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "hello there"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for text in ("hello", " there"):
            chunk = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
        await resp.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
        await resp.write_eof()
        return resp

    app = web.Application(middlewares=[count])
    app.router.add_post("/v1/chat/completions", chat)
    return app


@contextmanager
def start_gate(key: str | None = None, hang: bool = False) -> Iterator[Gate]:
    """Serve the gate in a background thread until the block ends (`hang`: chat requests get no answer)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    gate = Gate(root_url="", hang=hang)
    runner: list[web.AppRunner] = []

    async def start() -> None:
        r = web.AppRunner(_app(gate, key), access_log=None)
        await r.setup()
        site = web.TCPSite(r, "127.0.0.1", 0)
        await site.start()
        port = r.addresses[0][1]
        gate.root_url = f"http://127.0.0.1:{port}"
        runner.append(r)

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner[0].cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="gate", daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the gate server did not start")
    try:
        yield gate
    finally:
        gate.closed = True
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
