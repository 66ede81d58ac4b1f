"""A replay server for the conformance suite: serves recorded streams byte for byte on 127.0.0.1.

It runs in the test's own event loop, so the client's reads and the server's writes interleave in a fixed
order: segment k is read (and timed) before segment k+1 is written. Each write's perf_counter() is kept,
so the client's TTFT can be checked against the server's own send times.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from time import perf_counter


@dataclass
class Reply:
    """How to answer: the body as segments (each one write), its framing, and the status/content type."""

    segments: list[bytes]
    framing: str = "length"  # length | chunked | close (HTTP/1.1, Connection: close) | http10 (HTTP/1.0)
    status: int = 200
    content_type: str = "text/event-stream"
    cut: bool = False  # close the connection before the body is complete (declared length / no last chunk)
    sent: list[float] = field(default_factory=list)  # perf_counter() after each segment was written


async def serve(reply: Reply) -> tuple[asyncio.AbstractServer, int]:
    """Start a server answering every request with `reply`; returns it and its port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            await _answer(reply, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _answer(reply: Reply, writer: asyncio.StreamWriter) -> None:
    body_len = sum(len(s) for s in reply.segments)
    version = "HTTP/1.0" if reply.framing == "http10" else "HTTP/1.1"
    head = [f"{version} {reply.status} X", f"Content-Type: {reply.content_type}"]
    if reply.framing == "length":
        head.append(f"Content-Length: {body_len + (10 if reply.cut else 0)}")
    elif reply.framing == "chunked":
        head.append("Transfer-Encoding: chunked")
    elif reply.framing == "close":
        head.append("Connection: close")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    await writer.drain()
    await asyncio.sleep(0.002)
    for seg in reply.segments:
        writer.write(b"%x\r\n%s\r\n" % (len(seg), seg) if reply.framing == "chunked" else seg)
        reply.sent.append(perf_counter())
        await writer.drain()
        await asyncio.sleep(0.002)
    if reply.framing == "chunked" and not reply.cut:
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    if reply.framing in ("close", "http10") or reply.cut:
        writer.close()
        return
    await asyncio.sleep(0.05)  # keep-alive framings: the client must not need the close to finish
