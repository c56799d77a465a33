"""Request-wide plumbing: the audit context (IP) and rendering domain errors on pages."""

from django.shortcuts import render

from audit import context as audit_context
from config.errors import DomainError


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


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
