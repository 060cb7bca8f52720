"""The one way the app makes HTTP calls to URLs that tenants supply (location connectors).

A tenant admin chooses the URL, so without care the worker would POST wherever they point it: the
loopback interface, the private network, the cloud metadata service. Every call therefore goes through
``post``, which

- accepts only ``http``/``https`` on ports 80, 443, 8080 and 8443, with no user name or password;
- resolves the host and refuses unless *every* address it resolves to is public (not loopback, private,
  link-local, metadata, multicast, reserved, unspecified, CGNAT ``100.64.0.0/10``, IPv6 unique-local, nor
  an IPv4-mapped/6to4/NAT64 form of those);
- connects to the address it vetted (the URL's host is swapped for the IP; ``Host`` and, for https, the
  TLS server name stay the original host), so a DNS answer that changes between check and connect
  (rebinding) cannot move the call;
- does not follow redirects (a 3xx is a failure) and never reads the answer's body: callers get a status
  and a short reason they may store and show.

``OMS_OUTBOUND_ALLOW`` lists hosts, IPs and CIDRs a private deployment lets through anyway (any port):
an internal WMS, say.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import httpx

from app.config import get_settings

SCHEMES = ("http", "https")
PORTS = frozenset({80, 443, 8080, 8443})
RESOLVE_TIMEOUT_S = 5.0
NOT_A_URL = "not a URL"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")


class Refused(Exception):
    """The URL may not be called; ``reason`` is short and safe to store and show."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int


@dataclass(frozen=True)
class Outcome:
    """What a call came to: the answer's status (None when there was none) and, unless it was a 2xx,
    a short reason (``HTTP 503``, ``timeout``, ``address not allowed``, ``redirect not followed``...)."""

    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def parse(url: str) -> Target:
    """The URL's scheme, host and port, or ``Refused`` (scheme, credentials, a URL it is not)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise Refused(NOT_A_URL) from None
    if not parts.scheme:
        raise Refused(NOT_A_URL)
    if parts.scheme.lower() not in SCHEMES:
        raise Refused("scheme not allowed")
    if not parts.netloc:
        raise Refused(NOT_A_URL)
    if "@" in parts.netloc:
        raise Refused("credentials not allowed")
    host = (parts.hostname or "").lower()
    if _literal(host) is None and not _is_host_name(host):
        raise Refused(NOT_A_URL)
    scheme = parts.scheme.lower()
    return Target(url.strip(), scheme, host, port or (443 if scheme == "https" else 80))


def _is_host_name(host: str) -> bool:
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return _HOST_NAME.fullmatch(ascii_host) is not None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve(host: str, port: int = 443) -> list[IPAddress]:
    """Every address ``host`` resolves to (through the event loop's resolver), or ``Refused``."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, TimeoutError):
        raise Refused("host not found") from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        try:  # a scoped IPv6 address ("fe80::1%eth0") is link-local: refused either way
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        except ValueError:
            raise Refused("address not allowed") from None
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Refused("host not found")
    return addresses


def is_public(address: IPAddress) -> bool:
    """Reachable on the public internet, and none of the ranges that lead inside."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address in _CGNAT
    )


@lru_cache(maxsize=8)
def _allow_list(entries: tuple[str, ...]) -> tuple[frozenset[str], tuple[IPNetwork, ...]]:
    names, networks = set(), []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            names.add(entry.lower())
    return frozenset(names), tuple(networks)


def _allowed_by_config(host: str, address: IPAddress | None) -> bool:
    names, networks = _allow_list(get_settings().outbound_allow)
    if host in names:
        return True
    if address is None:
        return False
    plain = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return any(a.version == n.version and a in n for a in (address, plain) if a for n in networks)


def _vet_address(target: Target, address: IPAddress) -> None:
    if _allowed_by_config(target.host, address):
        return
    if not is_public(address):
        raise Refused("address not allowed")
    if target.port not in PORTS:
        raise Refused("port not allowed")


async def vet(url: str) -> tuple[Target, list[IPAddress]]:
    """The parsed URL and the addresses to connect to, each of them checked; or ``Refused``."""
    target = parse(url)
    addresses = await resolve(target.host, target.port)
    for address in addresses:
        _vet_address(target, address)
    return target, addresses


async def check_url(url: str, *, allow_unresolved: bool = False) -> str | None:
    """None when ``url`` may be called, else the short reason. ``allow_unresolved``: a host name that
    does not resolve (yet) passes, for settings saved ahead of DNS; every call vets it again."""
    try:
        await vet(url)
    except Refused as refused:
        if refused.reason != "host not found" or not allow_unresolved:
            return refused.reason
        target = parse(url)
        if target.port not in PORTS and not _allowed_by_config(target.host, None):
            return "port not allowed"
    return None


def _pinned(target: Target, address: IPAddress) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """The request URL with the vetted IP as its host, the ``Host`` header and the TLS server name that
    keep the original host."""
    original = httpx.URL(target.url)
    # Scheme and port as vetted, whatever httpx's own parse of the URL made of them.
    pinned = original.copy_with(scheme=target.scheme, host=str(address), port=target.port)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return pinned, {"host": original.netloc.decode("ascii")}, extensions


async def post(
    url: str, *, content: bytes, headers: Mapping[str, str] | None = None, timeout_s: float = 10.0
) -> Outcome:
    """POST ``content`` to ``url`` once it is vetted, trying its addresses in the resolver's order
    until one connects. Never raises, never reads the answer's body."""
    try:
        target, addresses = await vet(url)
    except Refused as refused:
        return Outcome(None, refused.reason)
    outcome = Outcome(None, "connection failed")
    try:
        async with asyncio.timeout(timeout_s):
            for address in addresses:
                outcome = await _post_to(target, address, content, headers or {}, timeout_s)
                if outcome.error != "connection failed":
                    break
    except TimeoutError:
        return Outcome(None, "timeout")
    return outcome


async def _post_to(
    target: Target, address: IPAddress, content: bytes, headers: Mapping[str, str], timeout_s: float
) -> Outcome:
    pinned, host_header, extensions = _pinned(target, address)
    try:
        async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client:
            request = client.build_request(
                "POST", pinned, content=content, headers={**headers, **host_header}, extensions=extensions
            )
            response = await client.send(request, stream=True)
            await response.aclose()  # the body is the remote's to keep: it is never read
    except httpx.TimeoutException:
        return Outcome(None, "timeout")
    except httpx.ConnectError:
        return Outcome(None, "connection failed")
    except (httpx.HTTPError, httpx.InvalidURL, OSError):
        return Outcome(None, "request failed")
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(status, None)
    if 300 <= status < 400:
        return Outcome(status, "redirect not followed")
    return Outcome(status, f"HTTP {status}")
