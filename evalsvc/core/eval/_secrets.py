"""The secrets of an evaluation and how they are hidden in what a run relays or writes.

The API key is the only secret an EvalConfig carries: credentials and query strings in `api_url` are
refused by EvalConfig. The parent masks events and errors with `mask`; the worker masks its events
and every log record (eval_log.log, worker.log) with the same rule, so no file or event shows the key
even when the endpoint quotes it back in an error ("Incorrect API key provided: ...").
The masking rule itself (and what counts as a secret) is `evalsvc.core._secrets`, shared with the jobs.
"""

from __future__ import annotations

from typing import Any

from .._secrets import SUBSTRING_MIN, mask

_NOT_SECRET = ("", "EMPTY")


def secrets_of(api_key: str | None) -> tuple[str, ...]:
    """The strings to mask for this API key (none for the "EMPTY" placeholder)."""
    if api_key is None or api_key.strip() in _NOT_SECRET:
        return ()
    return (api_key,)


TEXT_FIELDS = ("message", "error", "traceback")
"""The free-text fields of an event: the only ones that can quote a secret."""


def mask_event(event: dict[str, Any], secrets: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """`event` with secrets masked in its free-text fields, in place; the others are left alone.

    Masking the whole serialised event instead would let a short key such as "done" rewrite the
    event's own fields ("type": "done").
    """
    if secrets:
        for name in TEXT_FIELDS:
            if isinstance(event.get(name), str):
                event[name] = mask(event[name], secrets)
    return event


__all__ = ["SUBSTRING_MIN", "TEXT_FIELDS", "mask", "mask_event", "secrets_of"]
