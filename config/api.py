"""The JSON API at /api/v1: one NinjaAPI, one router per app, every error rendered as JSON.

Auth is a personal API token (`Authorization: Bearer ss_…`); the call then acts as the token's
user, its audit events name the token, and it counts against the token's rate limit.
"""

import functools
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404
from ninja import NinjaAPI, Router, Swagger
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer

from audit import context as audit_context
from config.apikit import check_rate
from config.errors import DomainError, PayloadTooLarge, RateLimited
from members.activity import note_activity, note_workspace_public_id_activity
from members.tokens import token_authenticate

logger = logging.getLogger(__name__)


class TokenAuth(HttpBearer):
    """A live personal token → the request acts as its user, within the token's rate limit."""

    def authenticate(self, request, token):
        api_token = token_authenticate(token)
        if api_token is None:
            return None
        check_rate(
            bucket="all", key=api_token.pk, limit=settings.API_RATE_LIMIT_PER_MINUTE, window=60
        )
        request.user = api_token.user
        note_activity(api_token.user)  # Last Active (docs/rules.md §6), throttled
        # A call whose path names a workspace is activity in that workspace, as a page is.
        match = getattr(request, "resolver_match", None)
        ws_public_id = match.kwargs.get("workspace_id") if match else None
        if isinstance(ws_public_id, str) and ws_public_id:
            note_workspace_public_id_activity(api_token.user, ws_public_id)
        return api_token


class ObjectBodyParser(Parser):
    """Bodies are JSON objects; anything else is malformed (400), like unparseable JSON."""

    def parse_body(self, request):
        data = super().parse_body(request)
        if not isinstance(data, dict):
            raise ValueError("The request body must be a JSON object.")
        return data


api = NinjaAPI(
    title="SignalSmith Organizations API",
    version="1",
    description=(
        "Manage organizations, their workspaces, members, invitations, audit log and usage. "
        "Authenticate with a personal API token: `Authorization: Bearer <token>` "
        "(Account › API tokens, or `manage.py create_api_token EMAIL`). "
        'Errors are `{"error": {"code", "message", "fields"?}}`; lists are '
        '`{"items": [...], "next": <URL or null>}` with `limit` (≤ 100) and `cursor`.'
    ),
    urls_namespace="api",
    auth=TokenAuth(),
    # Served from ninja's bundled static files; no validator badge (it would call swagger.io).
    docs=Swagger(settings={"persistAuthorization": True, "validatorUrl": None}),
    docs_url="/docs",
    openapi_url="/openapi.json",
    parser=ObjectBodyParser(),
)


def _bind_token(view_func):
    """Every audit event written during the call records the token as its actor."""

    @functools.wraps(view_func)
    def wrapper(request, *args, **kwargs):
        token = getattr(request, "auth", None)
        if token is None:
            return view_func(request, *args, **kwargs)
        with audit_context.bind(token_id=token.pk):
            return view_func(request, *args, **kwargs)

    return wrapper


api.add_decorator(_bind_token, mode="operation")


def error_response(request, status: int, code: str, message: str, fields: dict | None = None):
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return api.create_response(request, {"error": body}, status=status)


@api.exception_handler(DomainError)
def domain_error(request, exc: DomainError):
    response = api.create_response(request, {"error": exc.as_dict()}, status=exc.status)
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(exc.retry_after)
    return response


def _field_name(loc: tuple) -> str:
    # loc is (source, param name, *path) for bodies and (source, name) for query/path params.
    source, *rest = loc
    if source == "body" and len(rest) > 1:
        rest = rest[1:]
    return ".".join(str(part) for part in rest) or source


@api.exception_handler(ValidationError)
def validation_error(request, exc: ValidationError):
    """A body that is missing or not a JSON object → 400; field errors → 422 with `fields`."""
    fields: dict[str, str] = {}
    for err in exc.errors:
        loc = tuple(err.get("loc") or ("body",))
        if loc[0] == "body" and len(loc) <= 2:
            return error_response(
                request, 400, "bad_request", "The request body must be a JSON object."
            )
        fields.setdefault(_field_name(loc), err.get("msg", "Invalid value."))
    return error_response(
        request, 422, "invalid", "Please correct the fields listed in `fields`.", fields
    )


@api.exception_handler(HttpError)
def http_error(request, exc: HttpError):
    if isinstance(exc, AuthenticationError):
        return error_response(
            request,
            401,
            "unauthorized",
            "Send a valid API token: `Authorization: Bearer <token>`. "
            "The token may be missing, unknown, revoked or expired.",
        )
    if exc.status_code == 400:
        return error_response(
            request, 400, "bad_request", "The request body must be a valid JSON object."
        )
    return error_response(request, exc.status_code, "error", str(exc))


@api.exception_handler(RequestDataTooBig)
def too_large(request, exc):
    """A body beyond DATA_UPLOAD_MAX_MEMORY_SIZE without a Content-Length (HostileInputMiddleware
    answers the others before the API sees them)."""
    return domain_error(request, PayloadTooLarge("The request body is too large."))


@api.exception_handler(Http404)
def not_found(request, exc):
    return error_response(request, 404, "not_found", "Not found.")


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def database_unavailable(request, exc):
    """The database went away: a 503 with Retry-After (config/dbdown.py), not a 500."""
    from config.dbdown import database_unavailable as unavailable

    logger.warning("database unavailable during %s %s: %s", request.method, request.path, exc)
    return unavailable(request)


@api.exception_handler(Exception)
def unexpected_error(request, exc: Exception):
    """Last resort: a bug still answers in JSON. Bad input must never get here."""
    logger.exception("Unexpected error in %s %s", request.method, request.path)
    return error_response(
        request, 500, "server_error", "Something went wrong on our side; it has been logged."
    )


def _mount():
    from audit.api import router as audit_router
    from billing.api import router as billing_router
    from members.api import router as members_router
    from members.lifecycle_api import router as lifecycle_router
    from members.me_api import router as me_router
    from orgs.api import router as orgs_router
    from orgs.sso.api import router as sso_router
    from workspaces.api import router as workspaces_router

    api.add_router("/organizations", orgs_router)
    api.add_router("/organizations", members_router)
    api.add_router("/organizations", lifecycle_router)
    api.add_router("/organizations", audit_router)
    api.add_router("/organizations", billing_router)
    api.add_router("/organizations", sso_router)
    api.add_router("/workspaces", workspaces_router)
    api.add_router("/me", me_router)
    api.add_router("", fallback)  # last: it matches every path


fallback = Router(auth=None)


@fallback.api_operation(
    ["GET", "POST", "PUT", "PATCH", "DELETE"], "/{path:rest}", include_in_schema=False
)
def unknown_endpoint(request, rest: str):
    """Any other /api/v1/ URL answers in JSON too."""
    return error_response(request, 404, "not_found", "No such endpoint; see /api/v1/docs.")


_mount()
