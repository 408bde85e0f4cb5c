"""The one way `hashmatch serve` fetches a URL: allow-listed hosts, public addresses only, bounded.

Every hop (the first request and each redirect) is checked the same way: http or https only, no
credentials in the URL, a host on the allow-list, and every address the host resolves to public
(not private, loopback, link-local, multicast, reserved or unspecified, IPv4-mapped forms
included). The connection then goes to the address that was checked, never to a second
resolution of the name, so a DNS answer that changes between check and connect (rebinding)
cannot reach an internal address. HTTPS still verifies the certificate against the host name.
The body is read up to a size cap, under a deadline for the whole download.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple
from urllib.parse import urljoin, urlsplit

from ..config import FETCH_CONNECT_TIMEOUT, FETCH_MAX_BYTES, FETCH_MAX_REDIRECTS, FETCH_TIMEOUT
from ..errors import InvalidInputError, ResourceLimitError


class FetchRefusedError(InvalidInputError):
    """A URL the service will not fetch: its scheme, host or address is not allowed."""


class FetchFailedError(InvalidInputError):
    """A URL that was allowed but could not be downloaded (refused, timed out, not 200)."""


class FetchTooLargeError(ResourceLimitError):
    """A download larger than the service's cap."""


Resolver = Callable[[str, int], List[str]]


def system_resolver(host: str, port: int) -> List[str]:
    """Every address the system resolver gives for host (IPv4 and IPv6)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise FetchFailedError(f"cannot resolve {host!r}: {e}") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


@dataclass(frozen=True)
class FetchPolicy:
    """What may be fetched: allowed hosts (``example.com``, ``*.example.com``; none: no URL at all),
    ``ip:port`` pairs exempt from the public-address rule (for a test server; empty by default), and bounds."""

    allow_hosts: Tuple[str, ...] = ()
    allow_private: Tuple[str, ...] = ()
    max_bytes: int = FETCH_MAX_BYTES
    connect_timeout: float = FETCH_CONNECT_TIMEOUT
    timeout: float = FETCH_TIMEOUT
    max_redirects: int = FETCH_MAX_REDIRECTS
    resolver: Resolver = field(default=system_resolver, compare=False)

    def host_allowed(self, host: str) -> bool:
        """Whether a host name is on the allow-list (``*.x`` matches x's subdomains, not x)."""
        host = host.lower().rstrip(".")
        for pattern in self.allow_hosts:
            p = pattern.lower().rstrip(".")
            if p == host or (p.startswith("*.") and host.endswith(p[1:])):
                return True
        return False


@dataclass(frozen=True)
class Fetched:
    """A downloaded body with its declared content type and the URL it finally came from."""

    body: bytes
    content_type: str
    url: str


def address_refusal(address: str) -> Optional[str]:
    """Why an IP address may not be fetched from (None when it is a public unicast address)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        for embedded in (ip.ipv4_mapped, ip.sixtofour, (ip.teredo or (None, None))[1]):
            if embedded is not None:
                why = address_refusal(str(embedded))
                if why:
                    return why
    for attr in ("is_loopback", "is_private", "is_link_local", "is_multicast", "is_reserved", "is_unspecified"):
        if getattr(ip, attr):
            return f"{ip} is a {attr[3:].replace('_', '-')} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def check_url(url: str, policy: FetchPolicy) -> Tuple[str, str, int, str, str]:
    """(scheme, host, port, path with query, the checked address) of a URL allowed by policy; refuses otherwise."""
    if not isinstance(url, str) or not url or len(url) > 8192:
        raise FetchRefusedError("url must be an http(s) URL of at most 8192 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise FetchRefusedError(f"url {url[:200]!r} is malformed: {e}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchRefusedError(f"url scheme {scheme or '(none)'!r} is not allowed: use http or https")
    if parts.username is not None or parts.password is not None:
        raise FetchRefusedError("urls with credentials (user:password@) are not fetched")
    host = parts.hostname or ""
    if not host:
        raise FetchRefusedError(f"url {url[:200]!r} has no host")
    if not policy.allow_hosts:
        raise FetchRefusedError("hashing by URL is off: start the server with --fetch-allow HOST (the hosts "
                                "media may be fetched from)")
    if not policy.host_allowed(host):
        raise FetchRefusedError(f"host {host!r} is not on the fetch allow-list")
    port = port or (443 if scheme == "https" else 80)
    addresses = policy.resolver(host, port)
    if not addresses:
        raise FetchFailedError(f"{host!r} resolves to no address")
    for address in addresses:  # every answer must be public: the resolver may rotate them
        if f"{address}:{port}" in policy.allow_private:
            continue
        why = address_refusal(address)
        if why:
            raise FetchRefusedError(f"host {host!r} resolves to {address}: refused ({why})")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port, path, addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to the address that was checked, whatever the host name resolves to now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        """Connect to the checked address."""
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the checked address; the certificate is verified against the host name (SNI too)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        """Connect to the checked address and verify the host's certificate."""
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def fetch(url: str, policy: FetchPolicy, accept: Sequence[str] = ("image/*", "video/*")) -> Fetched:
    """Download a URL under the policy, following at most policy.max_redirects redirects, each one checked."""
    deadline = time.monotonic() + policy.timeout
    for _hop in range(policy.max_redirects + 1):
        scheme, host, port, path, address = check_url(url, policy)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchFailedError(f"fetching {url[:200]!r} took longer than {policy.timeout:g} s")
        cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
        conn = cls(host, port, address, min(policy.connect_timeout, remaining))
        try:
            try:
                conn.request("GET", path, headers={"Accept": ", ".join(accept), "User-Agent": "hashmatch-serve",
                                                   "Accept-Encoding": "identity"})
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException, ssl.SSLError) as e:
                raise FetchFailedError(f"fetching {url[:200]!r} failed: {type(e).__name__}: {e}") from None
            if resp.status in (301, 302, 303, 307, 308):
                location = resp.getheader("Location")
                if not location:
                    raise FetchFailedError(f"{url[:200]!r} redirected without a Location")
                url = urljoin(url, location)
                continue
            if resp.status != 200:
                raise FetchFailedError(f"{url[:200]!r} answered HTTP {resp.status}")
            declared = resp.getheader("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > policy.max_bytes:
                raise FetchTooLargeError(f"{url[:200]!r} is {declared} bytes, above the {policy.max_bytes}-byte cap")
            return Fetched(_read_capped(conn, resp, policy, deadline, url), resp.getheader("Content-Type") or "", url)
        finally:
            conn.close()
    raise FetchFailedError(f"more than {policy.max_redirects} redirects from the URL")


def _read_capped(conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, policy: FetchPolicy,
                 deadline: float, url: str) -> bytes:
    chunks: List[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchFailedError(f"fetching {url[:200]!r} took longer than {policy.timeout:g} s")
        if conn.sock is not None:
            conn.sock.settimeout(min(policy.connect_timeout, remaining))
        try:
            chunk = resp.read(min(1 << 16, policy.max_bytes + 1 - size))
        except (OSError, http.client.HTTPException) as e:
            raise FetchFailedError(f"reading {url[:200]!r} failed: {type(e).__name__}: {e}") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > policy.max_bytes:
            raise FetchTooLargeError(f"{url[:200]!r} is larger than the {policy.max_bytes}-byte cap")
        chunks.append(chunk)
