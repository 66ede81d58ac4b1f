"""How the secrets of an evaluation are hidden in what a run relays or writes.

The secrets are `config_secrets(config)` (evalsvc.core._secrets): the API key and any secret-named value
in generation_config's extra_body; credentials and query strings in `api_url` are refused by EvalConfig.
The parent masks events and errors with `mask`; the worker masks its events
and every log record (eval_log.log, worker.log) with the same rule, so no file or event shows the key
even when the endpoint quotes it back in an error ("Incorrect API key provided: ...").
The masking rule itself (and what counts as a secret) is `evalsvc.core._secrets`, shared with the jobs.
"""

from __future__ import annotations

from typing import Any

from .._secrets import SUBSTRING_MIN, mask

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


__all__ = ["SUBSTRING_MIN", "TEXT_FIELDS", "mask", "mask_event"]
