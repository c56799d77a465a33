"""The one rule for URLs an owner gives us that our server then calls (SAML metadata, an OpenID
provider's discovery document and the endpoints it names): https, and only public addresses,
so an owner cannot make us probe our own network. SSO_METADATA_ALLOW_PRIVATE lifts both
(tests run identity providers on loopback over plain http)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlparse

from django.conf import settings


def outbound_url_problem(url: str, *, what: str = "the URL") -> str | None:
    """Why we will not call `url` (a sentence for the owner), or None when we may."""
    parsed = urlparse((url or "").strip())
    allow_private = settings.SSO_METADATA_ALLOW_PRIVATE
    if (
        parsed.scheme not in (("https", "http") if allow_private else ("https",))
        or not parsed.hostname
    ):
        return f"Give {what} as your identity provider shows it (https://…)."
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        addresses = {info[4][0] for info in socket.getaddrinfo(parsed.hostname, port)}
    except (OSError, UnicodeError, ValueError):
        return f"{parsed.hostname} could not be found."
    if not allow_private and any(not ipaddress.ip_address(a).is_global for a in addresses):
        return f"{what[0].upper() + what[1:]} points inside a private network; give the identity provider's public URL."
    return None
