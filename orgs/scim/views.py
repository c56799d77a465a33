"""The SCIM 2.0 endpoints under /scim/v2/<org-slug>/ (RFC 7644), authenticated by an org's token.

Every answer is application/scim+json; every refusal a SCIM Error with `status`, `detail`
and, where RFC 7644 §3.12 defines one, `scimType`. Writes go through orgs.scim.services.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from django.db.models import Q
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import ValidationError
from scim2_models import (
    Context,
    Group,
    PatchOp,
    ResponseParameters,
    SCIMException,
    ScimFilter,
    User,
)

from config.errors import DomainError
from orgs.scim import protocol, services
from orgs.scim.models import ScimGroup, ScimUser

CONTENT_TYPE = "application/scim+json"


def _json(data: Any, status: int = 200, **headers) -> JsonResponse:
    response = JsonResponse(data, status=status, content_type=CONTENT_TYPE, safe=False)
    for key, value in headers.items():
        response[key] = value
    return response


def _error(status: int, detail: str, scim_type: str | None = None) -> JsonResponse:
    return _json(protocol.error(status, detail, scim_type), status=status)


class ScimRefusal(Exception):
    def __init__(self, status: int, detail: str, scim_type: str | None = None):
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type


SCIM_TYPES = {"uniqueness": "uniqueness", "invalidValue": "invalidValue"}


def _from_domain(exc: DomainError) -> JsonResponse:
    scim_type = SCIM_TYPES.get(exc.code)
    if exc.status == 422:
        return _error(400, exc.message, scim_type or "invalidValue")
    if exc.status == 409 and not scim_type:
        # Refused by a policy, a plan limit or an invariant (last owner, SCIM-managed, ...).
        return _error(409 if exc.code != "plan_limit_members" else 403, exc.message)
    return _error(exc.status, exc.message, scim_type)


def scim_endpoint(view):
    """Authenticate the org's bearer token; turn every refusal into a SCIM Error."""

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request, org_slug, *args, **kwargs):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        raw = header[7:] if header[:7].lower() == "bearer " else ""
        token = services.scim_token_authenticate(org_slug, raw)
        if token is None:
            response = _error(401, "A valid SCIM bearer token for this organization is required.")
            response["WWW-Authenticate"] = 'Bearer realm="SCIM"'
            return response
        request.scim_token = token
        request.scim_base = request.build_absolute_uri(f"/scim/v2/{org_slug}/")
        try:
            return view(request, *args, **kwargs)
        except ScimRefusal as exc:
            return _error(exc.status, exc.detail, exc.scim_type)
        except services.ScimDomainRefused as exc:
            services.scim_refusal_record(token=token, error=exc)
            return _from_domain(exc)
        except DomainError as exc:
            return _from_domain(exc)
        except SCIMException as exc:
            err = exc.to_error()
            return _error(int(err.status or 400), str(err.detail or exc), err.scim_type)
        except ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {}
            where = ".".join(str(x) for x in first.get("loc", ()))
            scim_type = (first.get("ctx") or {}).get("scim_type") or "invalidValue"
            return _error(400, f"{where}: {first.get('msg', 'invalid')}".strip(": "), scim_type)

    return wrapper


def _body(request) -> dict:
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ScimRefusal(400, "The body is not valid JSON.", "invalidSyntax") from None
    if not isinstance(data, dict):
        raise ScimRefusal(400, "The body must be a JSON object.", "invalidSyntax")
    if "\\u0000" in request.body.decode("utf-8", "replace") or "\x00" in json.dumps(data):
        raise ScimRefusal(400, "Values must not contain NUL characters.", "invalidValue")
    return data


def _q(request):
    """The query parameters: the URL's, or a POST …/.search body's (RFC 7644 §3.4.3)."""
    return getattr(request, "scim_search", None) or request.GET


def _params(request) -> ResponseParameters | None:
    attributes = _q(request).get("attributes")
    excluded = _q(request).get("excludedAttributes")
    if not attributes and not excluded:
        return None
    return ResponseParameters.model_validate(
        {"attributes": attributes, "excludedAttributes": excluded}
    )


def _dump(request, resource, ctx=Context.RESOURCE_QUERY_RESPONSE) -> dict:
    return resource.model_dump(scim_ctx=ctx, response_parameters=_params(request))


def _created(request, resource) -> JsonResponse:
    """201 with the new resource and its Location (RFC 7644 §3.3)."""
    return _json(
        _dump(request, resource, Context.RESOURCE_CREATION_RESPONSE),
        status=201,
        Location=resource.meta.location,
    )


def _int(request, name: str, default: int, low: int, high: int) -> int:
    raw = _q(request).get(name)
    if raw in (None, ""):
        return default
    try:
        return max(low, min(high, int(raw)))
    except ValueError:
        raise ScimRefusal(400, f"{name} must be an integer.", "invalidValue") from None


def _list(request, items: list, total: int, start: int) -> JsonResponse:
    return _json(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": total,
            "itemsPerPage": len(items),
            "startIndex": start,
            "Resources": items,
        }
    )


# --- filters: common comparisons become SQL; anything else is evaluated by scim2-models ------

USER_COLUMNS = {
    "username": "user_name",
    "externalid": "external_id",
    "displayname": "display_name",
    "id": "public_id",
    "active": "active",
}
GROUP_COLUMNS = {"displayname": "display_name", "externalid": "external_id", "id": "public_id"}
LOOKUPS = {"eq": "iexact", "co": "icontains", "sw": "istartswith", "ew": "iendswith"}


def _to_q(node, columns: dict[str, str]) -> Q | None:
    from scim2_models.path.expressions import Comparison, LogicalExpr, Not, Present

    if isinstance(node, LogicalExpr):
        parts = [_to_q(t, columns) for t in node.terms]
        found = [p for p in parts if p is not None]
        if len(found) != len(parts) or not found:
            return None
        q = found[0]
        for p in found[1:]:
            q = (q & p) if str(node.op) == "and" else (q | p)
        return q
    if isinstance(node, Not):
        inner = _to_q(node.expr, columns)
        return None if inner is None else ~inner
    attr = getattr(getattr(node, "attr_path", None), "attr", "")
    if getattr(node.attr_path, "sub_attr", None) or getattr(node.attr_path, "uri", None):
        return None
    column = columns.get(str(attr).lower())
    if column is None:
        return None
    if isinstance(node, Present):
        return ~Q(**{column: ""}) if column != "active" else Q()
    if isinstance(node, Comparison):
        op = str(node.op)
        if column == "active" or isinstance(node.value, bool):
            if op == "eq":
                return Q(**{column: node.value})
            if op == "ne":
                return ~Q(**{column: node.value})
            return None
        if op in LOOKUPS:
            return Q(**{f"{column}__{LOOKUPS[op]}": str(node.value)})
        if op == "ne":
            return ~Q(**{f"{column}__iexact": str(node.value)})
    return None


def _filtered(request, qs, model, columns, to_resource):
    """(page of resources, total) for ?filter=&startIndex=&count=."""
    start = _int(request, "startIndex", 1, 1, 10**9)
    count = _int(request, "count", 100, 0, protocol.MAX_COUNT)
    raw = _q(request).get("filter")
    if raw:
        try:
            flt = ScimFilter[model](raw)
        except (ValueError, SCIMException, ValidationError) as exc:
            raise ScimRefusal(400, f"Invalid filter: {exc}", "invalidFilter") from None
        q = _to_q(flt.ast, columns)
        if q is None:
            # Rare filters (on emails, name, members...): evaluated on the resources in Python.
            resources = [r for r in (to_resource(o) for o in qs) if flt.match(r)]
            return resources[start - 1 : start - 1 + count], len(resources)
        qs = qs.filter(q)
    total = qs.count()
    page = list(qs[start - 1 : start - 1 + count]) if count else []
    return [to_resource(o) for o in page], total


# --- discovery -------------------------------------------------------------------------------


@scim_endpoint
def service_provider_config(request):
    if request.method != "GET":
        raise ScimRefusal(405, "Only GET is supported here.")
    return _json(protocol.service_provider_config(request.scim_base))


@scim_endpoint
def resource_types(request, name=None):
    if request.method != "GET":
        raise ScimRefusal(405, "Only GET is supported here.")
    items = protocol.resource_types(request.scim_base)
    if name is None:
        return _list(request, items, len(items), 1)
    for item in items:
        if item["id"] == name:
            return _json(item)
    raise ScimRefusal(404, f"No resource type {name}.")


@scim_endpoint
def schemas(request, schema_id=None):
    if request.method != "GET":
        raise ScimRefusal(405, "Only GET is supported here.")
    items = protocol.schemas(request.scim_base)
    if schema_id is None:
        return _list(request, items, len(items), 1)
    for item in items:
        if item["id"] == schema_id:
            return _json(item)
    raise ScimRefusal(404, f"No schema {schema_id}.")


def _search_params(request) -> dict:
    body = _body(request)
    params = {}
    for key in ("filter", "startIndex", "count"):
        if body.get(key) is not None:
            params[key] = str(body[key])
    for key in ("attributes", "excludedAttributes"):
        value = body.get(key)
        if value:
            params[key] = ",".join(value) if isinstance(value, list) else str(value)
    return params


@scim_endpoint
def search(request, resource: str = ""):
    """POST …/.search: a query in the body; at the root it spans Users and Groups."""
    if request.method != "POST":
        raise ScimRefusal(405, "Use POST on .search.")
    request.scim_search = _search_params(request)
    if resource in ("Users", "Groups"):
        return _resource_list(request, resource)
    start = _int(request, "startIndex", 1, 1, 10**9)
    count = _int(request, "count", 100, 0, protocol.MAX_COUNT)
    request.scim_search = {
        **request.scim_search,
        "startIndex": "1",
        "count": str(protocol.MAX_COUNT),
    }
    u, u_total = _query(request, "Users")
    g, g_total = _query(request, "Groups")
    items = [_dump(request, r) for r in [*u, *g]][start - 1 : start - 1 + count]
    return _list(request, items, u_total + g_total, start)


@scim_endpoint
def not_found(request, rest=""):
    raise ScimRefusal(404, "No such SCIM endpoint.")


# --- users -----------------------------------------------------------------------------------


def _user_attrs(resource: User) -> services.UserAttrs:
    data = resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    return services.UserAttrs(
        user_name=str(resource.user_name or ""),
        external_id=str(resource.external_id or ""),
        display_name=str(resource.display_name or ""),
        name={k: v for k, v in (data.get("name") or {}).items() if k in protocol.NAME_SUB},
        emails=[
            {k: v for k, v in e.items() if k in protocol.EMAIL_SUB}
            for e in (data.get("emails") or [])
        ],
        active=resource.active,
    )


def _scim_users(request):
    return ScimUser.objects.filter(organization=request.scim_token.organization).order_by("pk")


def _get_user(request, user_id: str) -> ScimUser:
    found = _scim_users(request).select_related("user").filter(public_id=user_id).first()
    if found is None:
        raise ScimRefusal(404, f"User {user_id} not found.")
    return found


def _user_qs(request):
    return _scim_users(request).prefetch_related("groups")


@scim_endpoint
def users(request):
    base = request.scim_base
    if request.method == "GET":
        return _resource_list(request, "Users")
    if request.method == "POST":
        resource = User.model_validate(_body(request), scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        scim_user = services.scim_user_create(token=request.scim_token, attrs=_user_attrs(resource))
        return _created(request, protocol.user_resource(scim_user, base))
    raise ScimRefusal(405, "Use GET or POST on /Users.")


@scim_endpoint
def user_detail(request, user_id):
    base = request.scim_base
    scim_user = _get_user(request, user_id)
    token = request.scim_token
    if request.method == "GET":
        return _json(_dump(request, protocol.user_resource(scim_user, base)))
    if request.method == "PUT":
        resource = User.model_validate(
            _body(request), scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST
        )
        scim_user = services.scim_user_replace(
            token=token, scim_user=scim_user, attrs=_user_attrs(resource)
        )
    elif request.method == "PATCH":
        current = protocol.user_resource(scim_user, base)
        patch = PatchOp[User].model_validate(
            _body(request), scim_ctx=Context.RESOURCE_PATCH_REQUEST
        )
        patch.patch(current)
        scim_user = services.scim_user_replace(
            token=token, scim_user=scim_user, attrs=_user_attrs(current)
        )
    elif request.method == "DELETE":
        services.scim_user_delete(token=token, scim_user=scim_user)
        return HttpResponse(status=204)
    else:
        raise ScimRefusal(405, "Use GET, PUT, PATCH or DELETE on a User.")
    scim_user = _get_user(request, user_id)
    return _json(
        _dump(
            request, protocol.user_resource(scim_user, base), Context.RESOURCE_REPLACEMENT_RESPONSE
        )
    )


# --- groups ----------------------------------------------------------------------------------


def _member_ids(resource: Group) -> list[str]:
    return [str(m.value) for m in (resource.members or []) if m.value]


def _scim_groups(request):
    return ScimGroup.objects.filter(organization=request.scim_token.organization).order_by("pk")


def _get_group(request, group_id: str) -> ScimGroup:
    found = _scim_groups(request).filter(public_id=group_id).first()
    if found is None:
        raise ScimRefusal(404, f"Group {group_id} not found.")
    return found


def _group_qs(request):
    return _scim_groups(request).prefetch_related("members")


def _query(request, kind: str):
    """(page of resources, total) of /Users or /Groups for the request's filter and page."""
    base = request.scim_base
    if kind == "Users":
        return _filtered(
            request,
            _user_qs(request),
            User,
            USER_COLUMNS,
            lambda o: protocol.user_resource(o, base),
        )
    return _filtered(
        request,
        _group_qs(request),
        Group,
        GROUP_COLUMNS,
        lambda o: protocol.group_resource(o, base),
    )


def _resource_list(request, kind: str):
    """A ListResponse of /Users or /Groups (GET, or POST …/.search)."""
    items, total = _query(request, kind)
    start = _int(request, "startIndex", 1, 1, 10**9)
    return _list(request, [_dump(request, r) for r in items], total, start)


@scim_endpoint
def groups(request):
    base = request.scim_base
    if request.method == "GET":
        return _resource_list(request, "Groups")
    if request.method == "POST":
        resource = Group.model_validate(_body(request), scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        group = services.scim_group_create(
            token=request.scim_token,
            display_name=str(resource.display_name or ""),
            external_id=str(resource.external_id or ""),
            member_ids=_member_ids(resource),
        )
        return _created(request, protocol.group_resource(group, base))
    raise ScimRefusal(405, "Use GET or POST on /Groups.")


@scim_endpoint
def group_detail(request, group_id):
    base = request.scim_base
    group = _get_group(request, group_id)
    token = request.scim_token
    if request.method == "GET":
        return _json(_dump(request, protocol.group_resource(group, base)))
    if request.method in ("PUT", "PATCH"):
        if request.method == "PUT":
            resource = Group.model_validate(
                _body(request), scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST
            )
        else:
            resource = protocol.group_resource(group, base)
            patch = PatchOp[Group].model_validate(
                _body(request), scim_ctx=Context.RESOURCE_PATCH_REQUEST
            )
            patch.patch(resource)
        services.scim_group_replace(
            token=token,
            group=group,
            display_name=str(resource.display_name or ""),
            external_id=str(resource.external_id or ""),
            member_ids=_member_ids(resource),
        )
        group = _get_group(request, group_id)
        return _json(
            _dump(
                request, protocol.group_resource(group, base), Context.RESOURCE_REPLACEMENT_RESPONSE
            )
        )
    if request.method == "DELETE":
        services.scim_group_delete(token=token, group=group)
        return HttpResponse(status=204)
    raise ScimRefusal(405, "Use GET, PUT, PATCH or DELETE on a Group.")
