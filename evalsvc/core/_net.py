"""The proxy rule for every request evalsvc makes.

evalsvc honours HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY (lower-case names win, as in curl and
urllib) for every outgoing request; a loopback host (localhost, 127.0.0.0/8, ::1) is never proxied.
The load generator, the evaluation preflight, the evaluation's own requests (evalscope's client) and
the openqa download all decide through `proxy_for`, so a preflight cannot pass directly while the
evaluation then fails through a proxy, or the other way round.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
LOOPBACK_DIRECT = True
"""The default of `proxy_for(bypass_loopback=)`; tests turn it off to put a proxy before 127.0.0.1."""


def _env(env: Mapping[str, str], name: str) -> str:
    """The variable `name` (lower-case spelling wins over upper-case), stripped; "" when unset or empty."""
    value = env.get(name)
    if value is None:
        value = env.get(name.upper())
    return (value or "").strip()


def is_loopback(host: str) -> bool:
    """True for localhost (and *.localhost), 127.0.0.0/8, ::1 and IPv4-mapped loopback addresses."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def default_port(scheme: str) -> int:
    """The port an http(s) URL without one means: 443 for https, 80 otherwise."""
    return _DEFAULT_PORTS.get(scheme.lower(), 80)


def host_port(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL: its port, else the scheme's default (80 for http, 443 for https)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # not a port: the default (the config's validation refuses such a URL anyway)
        port = None
    return parts.hostname or "", port or default_port(parts.scheme)


def proxy_for(url: str, env: Mapping[str, str] | None = None, *, bypass_loopback: bool | None = None) -> str | None:
    """The proxy URL a request to `url` goes through, or None to connect directly.

    The proxy of the URL's scheme (HTTP_PROXY for http, HTTPS_PROXY for https), else ALL_PROXY;
    none for a loopback host or a host NO_PROXY names (`*`; a host, optionally with `:port`; a domain
    suffix such as `.corp` or `corp`; an address block such as `10.0.0.0/8`). A proxy given without a
    scheme is taken as http://. `env` defaults to `os.environ`; `bypass_loopback=False` routes even a
    loopback host through a proxy (only tests want that: every test target is on 127.0.0.1).
    """
    env = os.environ if env is None else env
    if bypass_loopback is None:
        bypass_loopback = LOOPBACK_DIRECT
    scheme = urlsplit(url).scheme.lower()
    host, port = host_port(url)
    if scheme not in _DEFAULT_PORTS or not host or (bypass_loopback and is_loopback(host)):
        return None
    proxy = _env(env, f"{scheme}_proxy") or _env(env, "all_proxy")
    if not proxy or _no_proxy(host, port, _env(env, "no_proxy")):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _no_proxy(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether NO_PROXY names `host` (curl's reading, plus address blocks)."""
    host = host.lower().strip("[]").rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if entry == "*":
            return True
        name, entry_port = _split_entry(entry)
        if not name or (entry_port is not None and entry_port != port):
            continue
        if "/" in name:
            try:
                if address is not None and address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = name.lstrip("*").lstrip(".").rstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def _split_entry(entry: str) -> tuple[str, int | None]:
    """A NO_PROXY entry's name and port: `host`, `host:port`, `::1`, `[::1]:port`, `10.0.0.0/8`."""
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        name, _, port_text = entry.partition(":")
    else:
        name, port_text = entry, ""
    try:
        return name, int(port_text) if port_text else None
    except ValueError:
        return name, -1  # a malformed port matches nothing


def aiohttp_proxy(url: str) -> dict[str, Any]:
    """aiohttp request keywords for `url` under the rule: {} (direct) or {"proxy": ...}.

    Credentials in the proxy URL (`http://user:password@proxy:3128`) are sent by aiohttp as
    Proxy-Authorization, to the proxy only.
    """
    proxy = proxy_for(url)
    return {} if proxy is None else {"proxy": proxy}


def without_credentials(url: str) -> str:
    """`url` without `user:password@`, for messages: a proxy's credentials are never shown."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, parts.fragment))


def exempt_if_direct(url: str) -> None:
    """Name `url`'s host in NO_PROXY (both spellings, in os.environ) when the rule reaches it directly.

    For clients that read the proxy variables themselves: evalscope's OpenAI client (httpx) proxies
    loopback hosts and reads NO_PROXY its own way; with the host named it decides as `proxy_for` does.
    Nothing changes when no proxy is set or when the rule proxies `url`.
    """
    host = urlsplit(url).hostname
    if not host or proxy_for(url) is not None or not any(os.environ.get(var) for var in _PROXY_VARS):
        return
    # the list in force (the lower-case spelling wins), plus the host, under both spellings
    names = [n.strip() for n in _env(os.environ, "no_proxy").split(",") if n.strip()]
    value = ",".join(names if host in names else [*names, host])
    os.environ["no_proxy"] = os.environ["NO_PROXY"] = value
