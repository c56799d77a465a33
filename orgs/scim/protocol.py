"""SCIM wire format with scim2-models: what we publish, how we read requests and write resources.

scim2-models (pydantic) validates request bodies in the RFC 7644 contexts (creation,
replacement, patch), applies PATCH operations to a resource, parses filters, and serializes
resources and ListResponses. We publish the subset of the core User and Group schemas we store:
User userName, name (givenName, familyName, formatted), displayName, emails (value, type,
primary), active, groups (read-only), externalId; Group displayName, members, externalId.
"""

from __future__ import annotations

from typing import Any

from scim2_models import (
    URI,
    URN,
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    ETag,
    Filter,
    Group,
    GroupMember,
    Meta,
    Pagination,
    Patch,
    Reference,
    ResourceType,
    Schema,
    ServiceProviderConfig,
    Sort,
    User,
)
from scim2_models import (
    GroupMembership as UserGroup,
)

USER_ATTRIBUTES = {"userName", "name", "displayName", "emails", "active", "groups"}
NAME_SUB = {"givenName", "familyName", "formatted"}
EMAIL_SUB = {"value", "type", "primary"}
GROUP_ATTRIBUTES = {"displayName", "members"}
MEMBER_SUB = {"value", "$ref", "type"}  # RFC 7643 §8.7.1
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
MAX_COUNT = 200


def _restricted(model, keep: set[str], sub: dict[str, set[str]]) -> Schema:
    schema = model.to_schema()
    schema.attributes = [a for a in schema.attributes if a.name in keep]
    for attribute in schema.attributes:
        if attribute.name in sub and attribute.sub_attributes:
            attribute.sub_attributes = [
                s for s in attribute.sub_attributes if s.name in sub[attribute.name]
            ]
    return schema


def schemas(base: str) -> list[dict]:
    out = []
    for model, keep, sub in (
        (User, USER_ATTRIBUTES, {"name": NAME_SUB, "emails": EMAIL_SUB}),
        (Group, GROUP_ATTRIBUTES, {"members": MEMBER_SUB}),
    ):
        schema = _restricted(model, keep, sub)
        schema.meta = Meta(resource_type="Schema", location=f"{base}Schemas/{schema.id}")
        out.append(schema.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
    return out


def resource_types(base: str) -> list[dict]:
    out = []
    for model, endpoint in ((User, "/Users"), (Group, "/Groups")):
        rt = ResourceType.from_resource(model)
        rt.endpoint = Reference[URI](endpoint)
        rt.schema_extensions = None
        rt.meta = Meta(resource_type="ResourceType", location=f"{base}ResourceTypes/{rt.id}")
        out.append(rt.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
    return out


def service_provider_config(base: str) -> dict:
    spc = ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_COUNT),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        pagination=Pagination(
            cursor=False, index=True, default_page_size=100, max_page_size=MAX_COUNT
        ),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="OAuth Bearer Token",
                description="An organization's SCIM token, created by its owners in "
                "Organization › SCIM provisioning.",
                primary=True,
            )
        ],
        meta=Meta(resource_type="ServiceProviderConfig", location=f"{base}ServiceProviderConfig"),
    )
    return spc.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


def error(status: int, detail: str, scim_type: str | None = None) -> dict:
    body: dict[str, Any] = {"schemas": [ERROR_URN], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return body


def _iso(moment) -> str:
    return moment.isoformat()


def user_resource(scim_user, base: str) -> User:
    name = {k: v for k, v in (scim_user.name or {}).items() if k in NAME_SUB and v is not None}
    emails = [
        {k: v for k, v in e.items() if k in EMAIL_SUB and v is not None}
        for e in (scim_user.emails or [])
        if isinstance(e, dict)
    ]
    groups = [
        UserGroup.model_validate(
            {"value": g.public_id, "display": g.display_name, "$ref": f"{base}Groups/{g.public_id}"}
        )
        for g in scim_user.groups.all().order_by("pk")
    ]
    data: dict[str, Any] = {
        "schemas": [URN("urn:ietf:params:scim:schemas:core:2.0:User")],
        "id": scim_user.public_id,
        "userName": scim_user.user_name,
        "active": scim_user.active,
        "meta": {
            "resourceType": "User",
            "created": _iso(scim_user.created_at),
            "lastModified": _iso(scim_user.updated_at),
            "location": f"{base}Users/{scim_user.public_id}",
            "version": f'W/"{scim_user.version}"',
        },
    }
    if scim_user.external_id:
        data["externalId"] = scim_user.external_id
    if scim_user.display_name:
        data["displayName"] = scim_user.display_name
    if name:
        data["name"] = name
    if emails:
        data["emails"] = emails
    user: User[Any] = User.model_validate(data)
    if groups:
        user.groups = groups
    return user


def group_resource(group, base: str) -> Group:
    members = [
        GroupMember.model_validate(
            {"value": m.public_id, "type": "User", "$ref": f"{base}Users/{m.public_id}"}
        )
        for m in group.members.all().order_by("pk")
    ]
    data: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": group.public_id,
        "displayName": group.display_name,
        "meta": {
            "resourceType": "Group",
            "created": _iso(group.created_at),
            "lastModified": _iso(group.updated_at),
            "location": f"{base}Groups/{group.public_id}",
            "version": f'W/"{group.version}"',
        },
    }
    if group.external_id:
        data["externalId"] = group.external_id
    resource = Group.model_validate(data)
    if members:
        resource.members = members
    return resource
