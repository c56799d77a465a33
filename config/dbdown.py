"""A lost or unreachable database becomes a friendly 503 page (or JSON error), never a 500.

Two hooks, because Django turns an exception into a 500 response at the layer that raised it:
the middleware catches errors raised by views, and `server_error` (installed as handler500)
catches the ones raised in other middleware (sessions, authentication, last-active). The 503
page is a static template: rendering it must not need the database. Recovery needs no
restart: a broken connection is discarded at the end of the request and CONN_HEALTH_CHECKS
replaces a stale persistent one at the start of the next.
"""

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.views import defaults

log = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5


def database_unavailable(request) -> HttpResponse:
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {
                "error": {
                    "code": "service_unavailable",
                    "message": "The service is briefly unavailable; retry shortly.",
                }
            },
            status=503,
        )
    else:
        response = HttpResponse(loader.render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """A database connection error escaping a view becomes a 503 with Retry-After."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DATABASE_ERRORS):
            log.warning(
                "database unavailable during %s %s: %s", request.method, request.path, exception
            )
            return database_unavailable(request)
        return None


def server_error(request, template_name=defaults.ERROR_500_TEMPLATE_NAME):
    """handler500: a 503 when the uncaught exception was the database going away."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DATABASE_ERRORS):
        return database_unavailable(request)
    return defaults.server_error(request, template_name)
