"""POST to a customer's webhook without letting the URL reach our own network (SSRF).

The host is resolved once; every address it resolves to must be public (not private,
loopback, link-local, multicast or reserved — loopback only when AUDIT_STREAM_ALLOW_HTTP is
on, for development and tests), and the connection goes to the address that was checked, so
a DNS answer that changes between check and connect (rebinding) cannot redirect it. TLS
still verifies the certificate for the host name. Redirects are not followed.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from urllib.parse import urlsplit

from django.conf import settings


class BlockedAddress(OSError):
    pass


def address_problem(ip: str) -> str | None:
    """Why we will not connect to `ip`, or None."""
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    if addr.is_loopback:
        return None if settings.AUDIT_STREAM_ALLOW_HTTP else "a loopback address"
    if not addr.is_global or addr.is_multicast or addr.is_reserved:
        return "a private or reserved address"
    return None


def resolve(host: str, port: int) -> tuple[int, str]:
    """(family, address) to connect to; BlockedAddress when any answer is not allowed."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise BlockedAddress(f"{host} does not resolve")
    for _family, _type, _proto, _name, sockaddr in infos:
        problem = address_problem(str(sockaddr[0]))
        if problem:
            raise BlockedAddress(f"{host} resolves to {sockaddr[0]}, {problem}: refused")
    family, *_rest, sockaddr = infos[0]
    return int(family), str(sockaddr[0])


class _Pinned:
    """Connect to the vetted address instead of resolving the host again."""

    _pinned: str = ""

    def connect(self):
        self.sock = socket.create_connection((self._pinned, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self, http.client.HTTPSConnection):
            self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


class PinnedHTTPConnection(_Pinned, http.client.HTTPConnection):
    pass


class PinnedHTTPSConnection(_Pinned, http.client.HTTPSConnection):
    pass


def post(url: str, body: bytes, headers: dict, *, timeout: float) -> int:
    """POST and return the HTTP status; raises OSError (BlockedAddress, refused, timeout, TLS)."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    host = parts.hostname or ""
    _family, address = resolve(host, port)
    conn: PinnedHTTPConnection | PinnedHTTPSConnection
    if https:
        conn = PinnedHTTPSConnection(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = PinnedHTTPConnection(host, port, timeout=timeout)
    conn._pinned = address
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(65536)
        return response.status
    finally:
        conn.close()
