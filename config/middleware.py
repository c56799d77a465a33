"""Request-wide plumbing: the audit context (IP) and rendering domain errors on pages."""

import ipaddress

from django.conf import settings
from django.shortcuts import render

from audit import context as audit_context
from config.errors import DomainError


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the entry of
    X-Forwarded-For that the outermost trusted proxy appended (each proxy appends the address
    it received the request from, so entries further left are whatever the client sent).

    One function for the audit log, sign-in throttling (AXES_CLIENT_IP_CALLABLE) and the
    reset/sign-up limits. A header shorter than the chain, or not an address, is ignored.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    hops = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if hops > 0:
        chain = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        chain = [p for p in chain if p]
        if len(chain) >= hops:
            try:
                return str(ipaddress.ip_address(chain[-hops]))
            except ValueError:
                pass
    return remote


class RequestContextMiddleware:
    """Binds the request's IP for audit.record() for the duration of the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with audit_context.bind(ip=client_ip(request)):
            return self.get_response(request)


class DomainErrorMiddleware:
    """A DomainError escaping a page view becomes a readable page (or HTMX banner), never a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DomainError) or request.path.startswith("/api/"):
            return None
        if getattr(request, "htmx", False):
            response = render(
                request, "error.html#banner", {"error": exception}, status=exception.status
            )
            response["HX-Retarget"] = "#messages"
            response["HX-Reswap"] = "innerHTML"
            return response
        return render(request, "error.html", {"error": exception}, status=exception.status)
