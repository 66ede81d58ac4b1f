"""The secrets of an evaluation and how they are hidden in what a run relays or writes.

The API key is the only secret an EvalConfig carries: credentials and query strings in `api_url` are
refused by EvalConfig. The parent masks events and errors with `mask`; the worker masks its events
and every log record (eval_log.log, worker.log) with the same rule, so no file or event shows the key
even when the endpoint quotes it back in an error ("Incorrect API key provided: ...").
"""

from __future__ import annotations

import re
from typing import Any

SUBSTRING_MIN = 8
"""Keys this long are masked wherever they occur. A shorter key ("test", "k9") is masked only where it
stands alone: masking it inside other words would turn paths such as /tmp/pytest-1/test_x and ordinary
words into ***, corrupting logs and the file paths a result reports."""

_NOT_SECRET = ("", "EMPTY")


def secrets_of(api_key: str | None) -> tuple[str, ...]:
    """The strings to mask for this API key (none for the "EMPTY" placeholder)."""
    if api_key is None or api_key.strip() in _NOT_SECRET:
        return ()
    return (api_key,)


def mask(text: str, secrets: tuple[str, ...] | list[str]) -> str:
    """`text` with every secret replaced by *** (short ones only where they stand alone)."""
    for secret in secrets:
        if not secret or secret not in text:
            continue
        if len(secret) >= SUBSTRING_MIN:
            text = text.replace(secret, "***")
        else:
            text = re.sub(rf"(?<![\w-]){re.escape(secret)}(?![\w-])", "***", text)
    return text


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
