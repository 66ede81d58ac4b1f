"""Which proxy an outgoing request goes through: the one rule for every part of evalsvc.

evalsvc honours the usual environment variables, as curl and httpx do:

- `HTTP_PROXY` for http:// URLs, `HTTPS_PROXY` for https:// URLs (the lower-case spelling wins when both
  are set; an empty value means no proxy). A proxy URL without a scheme is taken as http://.
- `NO_PROXY`: comma-separated exceptions. `*` turns proxies off; a name matches itself and its sub-domains
  (`example.com` and `.example.com` both match `api.example.com`); an IP address or CIDR block
  (`10.0.0.0/8`) matches addresses in it; `host:port` matches only that port.
- Loopback targets (`localhost`, 127.0.0.0/8, ::1) never go through a proxy.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

_LOOPBACK_NAMES = ("localhost", "localhost.localdomain")
LOOPBACK_DIRECT = True  # the default of `bypass_loopback`; tests turn it off to put a proxy before 127.0.0.1


def proxy_for(url: str, env: Mapping[str, str] | None = None, *, bypass_loopback: bool | None = None) -> str | None:
    """The proxy URL to reach `url` through, or None for a direct connection.

    `env` defaults to `os.environ`; `bypass_loopback=False` routes even a loopback target through a proxy
    (only tests want that: every test target is on 127.0.0.1).
    """
    env = os.environ if env is None else env
    if bypass_loopback is None:
        bypass_loopback = LOOPBACK_DIRECT
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return None
    host = (parts.hostname or "").lower()
    if bypass_loopback and _is_loopback(host):
        return None
    proxy = _env(env, f"{scheme}_proxy")
    if not proxy:
        return None
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        port = 443 if scheme == "https" else 80
    if _excluded(host, port, _env(env, "no_proxy") or ""):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _env(env: Mapping[str, str], name: str) -> str | None:
    """The lower-case variable if set, else the upper-case one."""
    value = env.get(name)
    if value is None:
        value = env.get(name.upper())
    return value.strip() if value is not None else None


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _excluded(host: str, port: int, no_proxy: str) -> bool:
    """Whether `host`:`port` matches an entry of a NO_PROXY list."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in no_proxy.replace(" ", ",").split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, entry_port = entry, None
        if entry.startswith("["):  # [v6]:port
            name, _, rest = entry[1:].partition("]")
            entry_port = rest[1:] if rest.startswith(":") else None
        elif entry.count(":") == 1:
            name, entry_port = entry.split(":")
        if entry_port is not None and entry_port != str(port):
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = name.lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False
