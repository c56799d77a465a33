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
        # Inside an org or a workspace, the refusal keeps that page's header and tabs.
        if getattr(request, "org", None) is not None and hasattr(request, "org_can"):
            template, context = "orgs/error.html", {"org": request.org}
        elif getattr(request, "workspace", None) is not None and hasattr(request, "workspace_can"):
            template, context = "workspaces/error.html", {"workspace": request.workspace}
        else:
            template, context = "error.html", {}
        context["error"] = exception
        return render(request, template, context, status=exception.status)


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
