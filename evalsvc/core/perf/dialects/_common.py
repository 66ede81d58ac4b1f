"""Helpers shared by the dialects: message splitting, body merging, error text, keys."""

from __future__ import annotations

from typing import Any


def split_system(prompt: Any) -> tuple[str | None, list[dict[str, Any]]]:
    """The prompt as (system text or None, the other messages); a plain-text prompt is one user message."""
    if not prompt.messages:
        return None, [{"role": "user", "content": prompt.text or ""}]
    system: list[str] = []
    rest: list[dict[str, Any]] = []
    for message in prompt.messages:
        if message.get("role") == "system":
            system.append(content_text(message.get("content")))
        else:
            rest.append(message)
    return ("\n".join(system) if system else None), rest


def content_text(content: Any) -> str:
    """Text of an OpenAI-style message content (a string, or a list of parts of which the text ones count)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "" if content is None else str(content)


def merge_extra(body: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
    """Merge `extra_body` into a request body; an object merges into an object one level deep.

    So `{"parameters": {"top_p": 0.8}}` adds to DashScope's parameters instead of replacing them.
    """
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return body


def error_text(err: Any) -> str:
    """A short readable message out of an error object of any provider."""
    if isinstance(err, dict):
        parts = [str(err[k]) for k in ("type", "status", "code") if isinstance(err.get(k), (str, int)) and err.get(k)]
        msg = err.get("message")
        if isinstance(msg, str) and msg:
            parts.append(msg)
        return (": ".join(parts) if parts else str(err))[:200]
    return str(err)[:200]
