"""Request-wide plumbing: the audit context (IP), refusing hostile input early, and rendering
domain errors on pages."""

import ipaddress

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render

from audit import context as audit_context
from config.errors import DomainError, NotFound, PayloadTooLarge, ValidationFailed


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
        # Inside an org or a workspace, the refusal keeps that page's header and tabs.
        if getattr(request, "org", None) is not None and hasattr(request, "org_can"):
            template, context = "orgs/error.html", {"org": request.org}
        elif getattr(request, "workspace", None) is not None and hasattr(request, "workspace_can"):
            template, context = "workspaces/error.html", {"workspace": request.workspace}
        else:
            template, context = "error.html", {}
        context["error"] = exception
        return render(request, template, context, status=exception.status)


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def refusal(request, error: DomainError):
    """A DomainError as the caller expects it: JSON on the API, the error page (or an HTMX
    banner) elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": error.as_dict()}, status=error.status)
    return DomainErrorMiddleware(None).process_exception(request, error)


NUL_MESSAGE = (
    "The address or the form contains a NUL character (%00), which no field accepts. "
    "Remove it and try again."
)


class HostileInputMiddleware:
    """Refuses, before any view or form reads them, what no page or endpoint can use:

    - a body larger than DATA_UPLOAD_MAX_MEMORY_SIZE → 413 (Django would answer 400 on pages and
      the API's catch-all a 500);
    - a NUL character, which PostgreSQL text cannot hold (it would fail deep inside a query as
      a 500): on pages, in the path, the query string or a form field → 400 with a message; on
      the API, in the path → 404 (no id contains one) and in a query parameter → 422 naming
      it, the statuses every operation documents. JSON bodies are left to the API's schemas,
      which refuse NUL per field (422).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            return refusal(
                request,
                PayloadTooLarge(
                    f"The request is too large: at most {limit / 1_048_576:g} MB "
                    f"({limit:,} bytes) of data per request."
                ),
            )
        where = self._nul_in(request)
        if where is None:
            return self.get_response(request)
        if not request.path.startswith("/api/"):
            return refusal(request, DomainError(NUL_MESSAGE, code="nul_character"))
        if where == "path":
            return refusal(request, NotFound("Not found."))
        return refusal(
            request,
            ValidationFailed(
                "Please correct the fields listed in `fields`.",
                fields={where: "Must not contain a NUL character."},
            ),
        )

    @staticmethod
    def _nul_in(request) -> str | None:
        """Where a NUL character is: "path", or the name of the field holding it, or None."""
        if "\x00" in request.path:
            return "path"
        for key, values in request.GET.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                return key.replace("\x00", "") or "query"
        content_type = request.content_type or ""
        # The API reads its own body (JSON): parsing a multipart one here would consume it.
        form_types = FORM_TYPES[:1] if request.path.startswith("/api/") else FORM_TYPES
        if request.method == "POST" and content_type.startswith(form_types):
            try:
                fields = list(request.POST.lists())
            except (SuspiciousOperation, MultiPartParserError, ValueError):
                return None  # a malformed body: Django answers it with a 400 later
            for key, values in fields:
                if "\x00" in key or any("\x00" in str(v) for v in values):
                    return key.replace("\x00", "") or "body"
        return None


class MethodNotAllowedPageMiddleware:
    """A GET to a POST-only page (e.g. a bookmarked form action) is a readable 405 page.

    Django's `require_POST` answers with an empty body; browsers show it as a blank page.
    The API keeps its JSON answers.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code == 405
            and not response.content
            and not request.path.startswith("/api/")
            and not getattr(request, "htmx", False)
        ):
            page = render(request, "405.html", {"allow": response.get("Allow", "")}, status=405)
            page["Allow"] = response.get("Allow", "")
            return page
        return response
