"""What counts as a secret, and how secrets are hidden: one rule for configs, outputs, jobs and logs."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any, TypeGuard

SUBSTRING_MIN = 8
"""Secrets this long are masked wherever they occur. A shorter one ("test", "k9") is masked only where it
stands alone: masking it inside other words would turn paths such as /tmp/pytest-1/test_x and ordinary
words into ***, corrupting logs and the file paths a result reports."""

_SECRET_ENDINGS = ("key", "token", "secret", "password", "passwd", "pwd", "auth", "authorization", "cookie",
                   "credential", "credentials", "signature", "sig", "bearer")
_SECRET_STARTS = ("auth", "secret", "passw", "credential", "bearer")

KEY_PLACEHOLDERS = ("", "EMPTY")
"""API key values that stand for "no key": nothing is sent for them, nothing is masked or hidden."""


def has_key(api_key: Any) -> TypeGuard[str]:
    """Whether `api_key` is a real key (not None, blank, or the "EMPTY" placeholder OpenAI clients use)."""
    return isinstance(api_key, str) and api_key.strip() not in KEY_PLACEHOLDERS


def secret_name(name: Any) -> bool:
    """Whether a header, query parameter or body key names a secret: api_key, X-Auth-Token, apiKey,
    access_token, Cookie, sig... but not max_tokens or keyword."""
    if not isinstance(name, str):
        return False
    words = re.findall(r"[a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())
    return any(w.endswith(_SECRET_ENDINGS) or w.startswith(_SECRET_STARTS) for w in words)


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


def scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    """`value` (JSON-like) with every string masked: an engine's error text may quote a secret."""
    if not secrets:
        return value
    if isinstance(value, str):
        return mask(value, secrets)
    if isinstance(value, dict):
        return {k: scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    return value


def redact_keys(value: Any) -> Any:
    """`value` (JSON-like) with the values of secret-named keys replaced by ***, at any depth."""
    if isinstance(value, dict):
        return {k: "***" if secret_name(k) and isinstance(v, (str, int, float)) else redact_keys(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact_keys(v) for v in value]
    return value


def redact_url(url: str) -> str:
    """`url` with any user:password and secret-named query values replaced by ***."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = []
        for pair in query.split("&"):
            key, sep, _ = pair.partition("=")
            pairs.append(f"{key}{sep}***" if sep and secret_name(urllib.parse.unquote_plus(key)) else pair)
        query = "&".join(pairs)
    return parts._replace(netloc=netloc, query=query).geturl()


def url_secrets(url: str) -> list[str]:
    """The secret parts of `url`, raw and decoded: password (or a lone user name), secret query values."""
    try:
        parts = urllib.parse.urlsplit(url)
        username, password = parts.username, parts.password
    except ValueError:
        return []
    values: list[str] = []
    if password:
        values += [password, urllib.parse.unquote(password)]
        if username:
            values.append(f"{username}:{password}")
    elif username:  # https://TOKEN@host: the user name is the credential
        values += [username, urllib.parse.unquote(username)]
    for pair in parts.query.split("&"):
        key, sep, value = pair.partition("=")
        if sep and value and secret_name(urllib.parse.unquote_plus(key)):
            values += [value, urllib.parse.unquote_plus(value)]
    return values


def secret_values(value: Any, secret: bool = False) -> list[str]:
    """The string values of secret-named keys anywhere in `value` (JSON-like)."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in secret_values(v, secret or secret_name(k))]
    if isinstance(value, list):
        return [s for v in value for s in secret_values(v, secret)]
    return [value] if secret and isinstance(value, str) else []


def config_secrets(config: Any) -> tuple[str, ...]:
    """Every secret a PerfConfig or EvalConfig holds, longest first: the API key, URL credentials and secret
    query values, secret-named header values (and their token part) and secret-named values in extra_body
    (PerfConfig) or generation_config (EvalConfig, whose extra_body sits in it), and the judge's key (EvalConfig)."""
    values: list[str] = []
    api_key = getattr(config, "api_key", None)
    if has_key(api_key):
        values.append(api_key)
    url = getattr(config, "url", None) or getattr(config, "api_url", None)
    if isinstance(url, str):
        values += url_secrets(url)
    for name, value in (getattr(config, "headers", None) or {}).items():
        if isinstance(value, str) and value.strip() and secret_name(name):
            values.append(value)
            values.append(value.split()[-1])  # "Bearer sk-..." also leaks as its token part
    values += secret_values(getattr(config, "extra_body", None))
    values += secret_values(getattr(config, "generation_config", None))
    judge = getattr(config, "judge", None)  # EvalConfig's judge block: its key, URL credentials, secret options
    if isinstance(judge, dict):
        values += [v for v in secret_values(judge) if has_key(v)]
        if isinstance(judge.get("api_url"), str):
            values += url_secrets(judge["api_url"])
    return tuple(sorted({v for v in values if v.strip()}, key=len, reverse=True))
