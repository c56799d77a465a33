"""Every write SCIM makes: tokens, group mappings, provisioning, deprovisioning, groups.

Tokens and mappings are set by org owners (OrgCapability.MANAGE_SCIM). Users and groups are
written by the org's identity provider, authenticated by a ScimToken: its events carry the
token as "SCIM (<name>)" with its public id in the details. Lock order, as everywhere:
organization row → workspace rows by id → membership rows; SCIM rows after them.

Rules (README › SCIM provisioning, docs/rules.md §12):
- SCIM provisions only addresses in the org's verified domains: creating a User, or leaving
  one active after PUT/PATCH, with an address outside them is refused (ScimDomainRefused);
  an org with no verified domain can hold tokens but create no User. Deactivating and
  deleting are never refused, so a domain removed later never blocks deprovisioning.
- Provisioning makes the account an org member (role member): it takes a seat and obeys the
  allowed-domains policy; workspace access comes only from group mappings.
- Deprovisioning (active=false or DELETE) removes the org membership and every membership in
  the org's linked workspaces in one transaction, signs the person out of every session and
  revokes their API tokens. Re-activating gives a fresh member seat plus today's group grants:
  the former role, hand-given access, sessions and tokens are not restored.
- A workspace a group maps to is SCIM's for its members: SCIM sets the role there and takes it
  back when the person leaves the group (ScimGrant records what SCIM gave).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from audit.services import record
from billing.limits import check_member_limit
from config.errors import Conflict, NotFound, ValidationFailed
from config.roles import Role
from members.account_models import UserSession
from members.models import ApiToken, OrgMembership, User, normalize_email
from members.services import (
    _ensure_not_last_org_owner,
    _remove_everywhere,
    _revoke,
    workspace_grant_via_org,
)
from members.tokens import hash_token, mint_secret
from orgs.governance import check_email_allowed
from orgs.models import Organization
from orgs.permissions import OrgCapability, org_role_of, require_org
from orgs.scim.models import GroupMapping, ScimGrant, ScimGroup, ScimToken, ScimUser
from orgs.services import lock_linked_workspaces
from orgs.sso.domains import verified_domains
from workspaces.models import Workspace, WorkspaceMembership

TOKEN_PREFIX = "scim_"
VISIBLE_PREFIX_LENGTH = 12


class ScimUniqueness(Conflict):
    """A userName / displayName already taken in this org (SCIM scimType "uniqueness")."""

    code = "uniqueness"


class ScimDomainRefused(ValidationFailed):
    """A User whose address is outside the org's verified domains (scimType invalidValue).

    `reason` is a stable code for the audit log; `user_name` and `addresses` say who."""

    def __init__(self, message: str, *, reason: str, user_name: str, addresses: list[str]):
        super().__init__(message, code="invalidValue", fields={"emails": message})
        self.reason, self.user_name, self.addresses = reason, user_name, addresses


def _lock_org(org: Organization) -> Organization:
    from orgs.services import lock_org

    return lock_org(org)


# --- tokens (owners) -------------------------------------------------------------------------


@transaction.atomic
def scim_token_create(*, actor: User | None, org: Organization, name: str) -> tuple[ScimToken, str]:
    """A new SCIM token for the org: returns (token, raw secret), the secret shown once.

    actor=None only for `manage.py create_scim_token` (an operator on the server)."""
    org = _lock_org(org)
    if actor is not None:
        require_org(org_role_of(actor, org), OrgCapability.MANAGE_SCIM)
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(
            "Give the token a name.", fields={"name": "Name the token, e.g. the IdP using it."}
        )
    if len(name) > 100:
        raise ValidationFailed("The name is too long.", fields={"name": "At most 100 characters."})
    raw, prefix, digest = mint_secret(TOKEN_PREFIX, VISIBLE_PREFIX_LENGTH)
    token = ScimToken.objects.create(
        organization=org,
        name=name,
        prefix=prefix,
        token_hash=digest,
        created_by=actor,
    )
    record(
        actor=actor,
        action="scim.token_created",
        organization=org,
        target=token,
        details={"name": name, "prefix": token.prefix, "token": token.public_id},
    )
    return token, raw


@transaction.atomic
def scim_token_revoke(*, actor: User, org: Organization, token: ScimToken) -> ScimToken:
    org = _lock_org(org)
    require_org(org_role_of(actor, org), OrgCapability.MANAGE_SCIM)
    locked = ScimToken.objects.select_for_update().filter(pk=token.pk, organization=org).first()
    if locked is None:
        raise NotFound("No such SCIM token.")
    if locked.revoked_at is not None:
        return locked
    locked.revoked_at = timezone.now()
    locked.save(update_fields=["revoked_at"])
    record(
        actor=actor,
        action="scim.token_revoked",
        organization=org,
        target=locked,
        details={"name": locked.name, "prefix": locked.prefix, "token": locked.public_id},
    )
    return locked


def scim_token_authenticate(org_slug: str, raw: str) -> ScimToken | None:
    """The live token of the org named in the URL, or None (unknown, revoked, other org)."""
    raw = (raw or "").strip()
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = (
        ScimToken.objects.select_related("organization")
        .filter(
            token_hash=hash_token(raw),
            revoked_at__isnull=True,
            organization__slug=org_slug,
            organization__deleted_at__isnull=True,
        )
        .first()
    )
    if token is not None:
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() >= 60:
            ScimToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def _by(token: ScimToken) -> dict:
    return {"actor": None, "actor_label": f"SCIM ({token.name})"}


def _token_details(token: ScimToken) -> dict:
    return {"scim_token": token.public_id}


# --- group mappings (owners) -----------------------------------------------------------------


@transaction.atomic
def group_mapping_set(
    *,
    actor: User,
    org: Organization,
    group_name: str,
    workspace: Workspace,
    role: Role | None,
) -> GroupMapping | None:
    """Map a group to a role in a linked workspace (None removes the mapping); the group's
    members' access changes at once."""
    org = _lock_org(org)
    require_org(org_role_of(actor, org), OrgCapability.MANAGE_SCIM)
    group_name = (group_name or "").strip()
    if not group_name or len(group_name) > 150:
        raise ValidationFailed(
            "Name the group as your identity provider sends it.",
            fields={"group_name": "Enter the group's display name (at most 150 characters)."},
        )
    ws = Workspace.objects.select_for_update().filter(pk=workspace.pk, organization=org).first()
    if ws is None:
        raise ValidationFailed(
            "Groups can only be mapped to workspaces linked to this organization.",
            fields={"workspace": "Choose a workspace linked to this organization."},
        )
    mapping: GroupMapping | None = (
        GroupMapping.objects.select_for_update()
        .annotate(lname=Lower("group_name"))
        .filter(organization=org, lname=group_name.lower(), workspace=ws)
        .first()
    )
    if role is None:
        if mapping is None:
            raise NotFound("No such group mapping.")
        mapping.delete()
        record(
            actor=actor,
            action="scim.mapping_removed",
            organization=org,
            workspace=ws,
            target=ws,
            details={"group": mapping.group_name, "role": Role(mapping.role).label},
        )
        result = None
    else:
        role = Role(role)
        if mapping is not None and mapping.role == role:
            return mapping
        before = Role(mapping.role).label if mapping else None
        if mapping is None:
            mapping = GroupMapping.objects.create(
                organization=org, group_name=group_name, workspace=ws, role=role, created_by=actor
            )
        else:
            mapping.role = role
            mapping.save(update_fields=["role"])
        record(
            actor=actor,
            action="scim.mapping_set",
            organization=org,
            workspace=ws,
            target=ws,
            details={"group": mapping.group_name, "role": role.label, "from_role": before},
        )
        result = mapping
    affected = (
        ScimUser.objects.filter(
            organization=org, user__isnull=False, groups__display_name__iexact=group_name
        )
        .exclude(active=False)
        .distinct()
    )
    for scim_user in affected.order_by("pk"):
        _reconcile(org=org, scim_user=scim_user, actor=actor)
    return result


# --- grants from groups ----------------------------------------------------------------------


def _reconcile(
    *,
    org: Organization,
    scim_user: ScimUser,
    actor: User | None,
    token: ScimToken | None = None,
) -> None:
    """Make the person's workspace access match their groups' mappings (org row locked).

    Grants and changes are member.access_* events like any other, carrying the groups."""
    user = scim_user.user
    if user is None:
        return
    linked = lock_linked_workspaces(org)
    desired: dict[int, tuple[Role, list[str]]] = {}
    if scim_user.provisioned:
        names = [n.lower() for n in scim_user.groups.values_list("display_name", flat=True)]
        mappings = GroupMapping.objects.annotate(lname=Lower("group_name")).filter(
            organization=org, lname__in=names, workspace_id__in=list(linked)
        )
        for m in mappings:
            role, groups = desired.get(m.workspace_id, (Role.MEMBER, []))
            desired[m.workspace_id] = (max(role, Role(m.role)), [*groups, m.group_name])
    managed = {
        g.workspace_id: g for g in ScimGrant.objects.select_for_update().filter(scim_user=scim_user)
    }
    current = {
        m.workspace_id: m
        for m in WorkspaceMembership.objects.select_for_update()
        .select_related("user")
        .filter(user=user, workspace_id__in=list(linked))
    }
    extra = _token_details(token) if token else {}
    for ws_pk in sorted(set(desired) | set(managed)):
        if ws_pk in desired:
            role, groups = desired[ws_pk]
            existing = current.get(ws_pk)
            if ws_pk not in managed and existing is not None and existing.role >= role:
                continue  # access given by hand that the group would not raise: left alone
            workspace_grant_via_org(
                actor=actor,
                org=org,
                workspace=linked[ws_pk],
                user=user,
                role=role,
                existing=existing,
                details={"scim_groups": sorted(groups), **extra},
            )
            ScimGrant.objects.update_or_create(
                scim_user=scim_user, workspace_id=ws_pk, defaults={"role": role}
            )
        else:
            if ws_pk in linked and ws_pk in current:
                _revoke(actor=actor, org=org, workspace=linked[ws_pk], membership=current[ws_pk])
            managed[ws_pk].delete()


# --- users (the identity provider) -----------------------------------------------------------


@dataclass
class UserAttrs:
    user_name: str
    external_id: str = ""
    display_name: str = ""
    name: dict = field(default_factory=dict)  # givenName, familyName, formatted
    emails: list = field(default_factory=list)  # [{value, type, primary}]
    active: bool | None = True

    @property
    def email(self) -> str:
        primary = [e for e in self.emails if e.get("primary")] or self.emails
        return str(primary[0].get("value") or "") if primary else ""

    def account_email(self) -> str:
        """The account's address: userName when it is an email, else the primary email."""
        for candidate in (self.user_name, self.email):
            email = normalize_email(candidate)
            try:
                validate_email(email)
            except ValidationError:
                continue
            return email
        return ""  # the record waits for an address before it becomes an account

    def full_name(self) -> str:
        parts = (self.name.get("givenName"), self.name.get("familyName"))
        return (
            self.display_name or self.name.get("formatted") or " ".join(str(p) for p in parts if p)
        )[:150]


def _addresses(attrs: UserAttrs) -> list[str]:
    """Every email address the record carries: userName when it is one, and each emails value."""
    found: list[str] = []
    for candidate in [attrs.user_name, *(str(e.get("value") or "") for e in attrs.emails)]:
        email = normalize_email(candidate)
        try:
            validate_email(email)
        except ValidationError:
            continue
        if email not in found:
            found.append(email)
    return found


def _check_verified_domains(org: Organization, attrs: UserAttrs) -> None:
    """Refuse a User with an address outside the org's verified domains (docs/rules.md §12)."""
    domains = set(verified_domains(org))
    addresses = _addresses(attrs)
    if not domains:
        raise ScimDomainRefused(
            f"{org.name} has no verified domain yet: an owner must verify the email domain "
            "(Organization › Single sign-on) before its identity provider can provision users.",
            reason="no_verified_domain",
            user_name=attrs.user_name,
            addresses=addresses,
        )
    outside = [a for a in addresses if a.rsplit("@", 1)[1] not in domains]
    if outside:
        raise ScimDomainRefused(
            f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} not in a domain "
            f"verified by {org.name} ({', '.join(sorted(domains))}): SCIM provisions only "
            "addresses in the organization's verified domains.",
            reason="domain_not_verified",
            user_name=attrs.user_name,
            addresses=outside,
        )


def scim_refusal_record(*, token: ScimToken, error: ScimDomainRefused) -> None:
    """The refusal's own audit event, after the refused change rolled back (nothing changed)."""
    with transaction.atomic():
        record(
            **_by(token),
            action="scim.user_refused",
            organization=token.organization,
            target_label=error.user_name[:200] or None,
            details={
                "reason": error.reason,
                "message": error.message,
                "user_name": error.user_name[:254],
                "addresses": error.addresses[:20],
                **_token_details(token),
            },
        )


def _check_user_name_free(org: Organization, user_name: str, exclude_pk: int | None = None) -> None:
    qs = ScimUser.objects.filter(organization=org, user_name__iexact=user_name)
    if exclude_pk:
        qs = qs.exclude(pk=exclude_pk)
    if qs.exists():
        raise ScimUniqueness(f"The userName {user_name!r} is already provisioned in {org.name}.")


def _account_for(org: Organization, email: str, full_name: str) -> User:
    """The account at this address, created if none. Nothing in the SCIM response tells the
    two cases apart (invariant 7)."""
    user = User.objects.select_for_update().filter(email=email).first()
    if user is None:
        user = User(email=email, full_name=full_name, email_verified_at=timezone.now())
        user.set_unusable_password()
        user.save()
        return user
    if not user.is_active:
        raise ValidationFailed(
            f"{email} cannot be provisioned.", code="invalidValue", fields={"userName": "Closed."}
        )
    if user.email_verified_at is None:
        # Someone signed up with this address but never proved it is theirs: the org's IdP says
        # it belongs to one of its people. Whoever registered it loses the password and every
        # session and token (pre-registration hijack); the real owner signs in by SSO or by
        # resetting the password through a link mailed to the address.
        user.set_unusable_password()
        user.email_verified_at = timezone.now()
        user.save(update_fields=["password", "email_verified_at"])
        _end_sessions_and_tokens(user)
    return user


def _end_sessions_and_tokens(user: User) -> dict:
    from members.sessions import _end

    rows = list(UserSession.objects.select_for_update().filter(user=user).order_by("pk"))
    _end(rows)
    revoked = ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    return {"sessions_ended": len(rows), "tokens_revoked": revoked}


def _join(*, org: Organization, scim_user: ScimUser) -> OrgMembership:
    """Give the person a member seat (org row locked): seats and the domain policy apply."""
    user = scim_user.user
    assert user is not None  # only a record with an account is provisioned
    membership = (
        OrgMembership.objects.select_for_update().filter(organization=org, user=user).first()
    )
    if membership is not None:
        return membership
    check_email_allowed(org.pk, user.email, doing="be provisioned into it")
    check_member_limit(org, adding=1)
    return OrgMembership.objects.create(user=user, organization=org, role=Role.MEMBER)


def _leave(*, org: Organization, scim_user: ScimUser) -> dict:
    """Remove membership and all linked-workspace access, end sessions and tokens."""
    user = scim_user.user
    assert user is not None  # only a record with an account was provisioned
    linked = lock_linked_workspaces(org)  # before the membership rows (lock order)
    membership = (
        OrgMembership.objects.select_for_update()
        .select_related("user")
        .filter(organization=org, user=user)
        .first()
    )
    lost: list[dict] = []
    role = None
    if membership is not None:
        _ensure_not_last_org_owner(org, membership)
        role = Role(membership.role).label
        lost = _remove_everywhere(membership=membership, linked=linked)
    ScimGrant.objects.filter(scim_user=scim_user).delete()
    ended = _end_sessions_and_tokens(user)
    return {"role": role, "access_removed": lost, **ended}


def _apply_attrs(scim_user: ScimUser, attrs: UserAttrs) -> None:
    scim_user.user_name = attrs.user_name[:254]
    scim_user.external_id = (attrs.external_id or "")[:254]
    scim_user.display_name = (attrs.display_name or "")[:150]
    scim_user.name = attrs.name or {}
    scim_user.emails = attrs.emails or []


def _lock_scim_user(org: Organization, scim_user: ScimUser) -> ScimUser:
    locked = (
        ScimUser.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(pk=scim_user.pk, organization=org)
        .first()
    )
    if locked is None:
        raise NotFound("No such user.")
    return locked


def _attach_account(org: Organization, attrs: UserAttrs) -> User | None:
    email = attrs.account_email()
    if not email:
        return None
    user = _account_for(org, email, attrs.full_name())
    if ScimUser.objects.filter(organization=org, user=user).exists():
        raise ScimUniqueness(f"{email} is already provisioned in {org.name}.")
    return user


def _require_user_name(attrs: UserAttrs) -> None:
    if not attrs.user_name.strip():
        raise ValidationFailed(
            "userName is required.", code="invalidValue", fields={"userName": "Required."}
        )


@transaction.atomic
def scim_user_create(*, token: ScimToken, attrs: UserAttrs) -> ScimUser:
    """Record the IdP's user; with an email address and active, provision the account."""
    org = _lock_org(token.organization)
    _require_user_name(attrs)
    _check_verified_domains(org, attrs)
    _check_user_name_free(org, attrs.user_name)
    scim_user = ScimUser(organization=org, active=attrs.active)
    _apply_attrs(scim_user, attrs)
    if scim_user.is_active:
        scim_user.user = _attach_account(org, attrs)
    try:
        with transaction.atomic():
            scim_user.save()
    except IntegrityError:
        raise ScimUniqueness(f"The userName {attrs.user_name!r} is already provisioned.") from None
    details = {
        "user_name": scim_user.user_name,
        "scim_id": scim_user.public_id,
        "active": scim_user.is_active,
        "account": scim_user.user_id is not None,
    }
    if scim_user.provisioned:
        membership = _join(org=org, scim_user=scim_user)
        details.update(role=Role(membership.role).label, membership=membership.public_id)
    record(
        **_by(token),
        action="scim.user_provisioned",
        organization=org,
        target=scim_user.user,
        target_label=None if scim_user.user else scim_user.user_name,
        details={**details, **_token_details(token)},
    )
    return scim_user


@transaction.atomic
def scim_user_replace(*, token: ScimToken, scim_user: ScimUser, attrs: UserAttrs) -> ScimUser:
    """PUT (and PATCH, applied to the current record first): new attributes, and provisioning
    or deprovisioning when `active` changes. The account's email is not changed by SCIM."""
    org = _lock_org(token.organization)
    scim_user = _lock_scim_user(org, scim_user)
    _require_user_name(attrs)
    if attrs.active is not False:
        # Deactivation is never refused: a domain removed later must not block a leaver.
        _check_verified_domains(org, attrs)
    _check_user_name_free(org, attrs.user_name, exclude_pk=scim_user.pk)
    before = _snapshot(scim_user)
    was_provisioned = scim_user.provisioned
    had_account = scim_user.user_id is not None
    _apply_attrs(scim_user, attrs)
    scim_user.active = attrs.active
    if scim_user.user is None and scim_user.is_active:
        scim_user.user = _attach_account(org, attrs)  # the first usable address arrived
    after = _snapshot(scim_user)
    if after == before:
        return scim_user
    scim_user.updated_at = timezone.now()
    scim_user.version += 1
    scim_user.save()
    user = scim_user.user
    common = {
        **_by(token),
        "organization": org,
        "target": user,
        "target_label": None if user else scim_user.user_name,
    }
    base = {
        "user_name": scim_user.user_name,
        "scim_id": scim_user.public_id,
        **_token_details(token),
    }
    if was_provisioned and not scim_user.provisioned:
        details = {**base, **_leave(org=org, scim_user=scim_user)}
        record(action="scim.user_deprovisioned", details=details, **common)
    elif scim_user.provisioned and not was_provisioned:
        membership = _join(org=org, scim_user=scim_user)
        details = {
            **base,
            "reactivated": had_account,
            "role": Role(membership.role).label,
            "membership": membership.public_id,
        }
        record(action="scim.user_provisioned", details=details, **common)
        _reconcile(org=org, scim_user=scim_user, actor=None, token=token)
    else:
        changed = sorted(k for k in before if before[k] != after[k])
        record(action="scim.user_updated", details={**base, "changed": changed}, **common)
    return scim_user


def _snapshot(scim_user: ScimUser) -> dict:
    return {
        "userName": scim_user.user_name,
        "externalId": scim_user.external_id,
        "displayName": scim_user.display_name,
        "name": scim_user.name,
        "emails": scim_user.emails,
        "active": scim_user.active,
        "account": scim_user.user_id,
    }


@transaction.atomic
def scim_user_delete(*, token: ScimToken, scim_user: ScimUser) -> None:
    org = _lock_org(token.organization)
    scim_user = _lock_scim_user(org, scim_user)
    user = scim_user.user
    details = {
        "user_name": scim_user.user_name,
        "scim_id": scim_user.public_id,
        **_token_details(token),
    }
    if scim_user.provisioned:
        details.update(_leave(org=org, scim_user=scim_user))
    scim_user.delete()
    record(
        **_by(token),
        action="scim.user_deleted",
        organization=org,
        target=user,
        target_label=None if user else scim_user.user_name,
        details=details,
    )


# --- groups (the identity provider) ----------------------------------------------------------


def _members_of(org: Organization, member_ids: list[str]) -> list[ScimUser]:
    ids = sorted(set(member_ids))
    found = list(
        ScimUser.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(organization=org, public_id__in=ids)
        .order_by("pk")
    )
    if len(found) != len(ids):
        missing = sorted(set(ids) - {u.public_id for u in found})
        raise ValidationFailed(
            f"Unknown member id(s): {', '.join(missing)}. Members must be Users of this "
            "organization.",
            code="invalidValue",
            fields={"members": "Unknown user id."},
        )
    return found


def _check_group_name_free(org: Organization, name: str, exclude_pk: int | None = None) -> str:
    name = (name or "").strip()
    if not name or len(name) > 150:
        raise ValidationFailed(
            "displayName is required (at most 150 characters).",
            code="invalidValue",
            fields={"displayName": "Required."},
        )
    qs = ScimGroup.objects.filter(organization=org, display_name__iexact=name)
    if exclude_pk:
        qs = qs.exclude(pk=exclude_pk)
    if qs.exists():
        raise ScimUniqueness(f"A group named {name!r} already exists in {org.name}.")
    return name


@transaction.atomic
def scim_group_create(
    *,
    token: ScimToken,
    display_name: str,
    external_id: str = "",
    member_ids: Sequence[str] = (),
) -> ScimGroup:
    org = _lock_org(token.organization)
    name = _check_group_name_free(org, display_name)
    members = _members_of(org, list(member_ids))
    group = ScimGroup.objects.create(
        organization=org, display_name=name, external_id=(external_id or "")[:254]
    )
    group.members.set(members)
    record(
        **_by(token),
        action="scim.group_created",
        organization=org,
        target=group,
        details={
            "scim_id": group.public_id,
            "members": [m.user_name for m in members],
            **_token_details(token),
        },
    )
    for m in members:
        _reconcile(org=org, scim_user=m, actor=None, token=token)
    return group


def _lock_group(org: Organization, group: ScimGroup) -> ScimGroup:
    locked = ScimGroup.objects.select_for_update().filter(pk=group.pk, organization=org).first()
    if locked is None:
        raise NotFound("No such group.")
    return locked


@transaction.atomic
def scim_group_replace(
    *,
    token: ScimToken,
    group: ScimGroup,
    display_name: str,
    external_id: str,
    member_ids: list[str],
) -> ScimGroup:
    """PUT / PATCH: the group's name and its complete member list; grants follow."""
    org = _lock_org(token.organization)
    group = _lock_group(org, group)
    name = _check_group_name_free(org, display_name, exclude_pk=group.pk)
    new_members = _members_of(org, list(member_ids))
    old_members = list(group.members.select_for_update().order_by("pk"))
    old_ids, new_ids = {m.pk for m in old_members}, {m.pk for m in new_members}
    renamed = name != group.display_name
    if not renamed and old_ids == new_ids and (external_id or "") == group.external_id:
        return group
    old_name = group.display_name
    group.display_name = name
    group.external_id = (external_id or "")[:254]
    group.updated_at = timezone.now()
    group.version += 1
    group.save()
    group.members.set(new_members)
    by_pk = {m.pk: m for m in [*old_members, *new_members]}
    record(
        **_by(token),
        action="scim.group_updated",
        organization=org,
        target=group,
        details={
            "scim_id": group.public_id,
            "from_name": old_name if renamed else None,
            "added": sorted(by_pk[pk].user_name for pk in new_ids - old_ids),
            "removed": sorted(by_pk[pk].user_name for pk in old_ids - new_ids),
            **_token_details(token),
        },
    )
    # A rename moves the group onto other mappings: everyone in it (or who was) is re-checked.
    touched = (old_ids | new_ids) if renamed else (old_ids ^ new_ids)
    for pk in sorted(touched):
        _reconcile(org=org, scim_user=by_pk[pk], actor=None, token=token)
    return group


@transaction.atomic
def scim_group_delete(*, token: ScimToken, group: ScimGroup) -> None:
    org = _lock_org(token.organization)
    group = _lock_group(org, group)
    members = list(group.members.select_for_update().order_by("pk"))
    record(
        **_by(token),
        action="scim.group_deleted",
        organization=org,
        target=group,
        details={
            "scim_id": group.public_id,
            "members": [m.user_name for m in members],
            **_token_details(token),
        },
    )
    group.delete()
    for m in members:
        _reconcile(org=org, scim_user=m, actor=None, token=token)


# --- what hand edits may not touch ----------------------------------------------------------


def managed_identity(org: Organization, user: User | None) -> ScimUser | None:
    """The person's active SCIM record in this org, if their membership is SCIM's."""
    if user is None:
        return None
    return ScimUser.objects.filter(organization=org, user=user).exclude(active=False).first()


def managed_workspaces(org: Organization, user: User) -> dict[int, list[str]]:
    """Workspace pk → the groups whose mapping gave the person access there."""
    grants = ScimGrant.objects.filter(
        scim_user__organization=org, scim_user__user=user
    ).values_list("workspace_id", flat=True)
    names = {
        n.lower(): n
        for n in ScimGroup.objects.filter(organization=org, members__user=user).values_list(
            "display_name", flat=True
        )
    }
    result: dict[int, list[str]] = {pk: [] for pk in grants}
    for m in GroupMapping.objects.filter(organization=org, workspace_id__in=list(result)):
        if m.group_name.lower() in names:
            result[m.workspace_id].append(names[m.group_name.lower()])
    return result


def check_hand_edit(
    org: Organization,
    user: User,
    *,
    workspaces: Iterable[int] | None = None,
    removing: bool = False,
) -> None:
    """Refuse hand edits that SCIM would overwrite (members.services calls this)."""
    identity = managed_identity(org, user)
    if identity is None:
        return
    if removing:
        raise Conflict(
            f"{user.display_name} is provisioned by {org.name}'s identity provider (SCIM). "
            "Deactivate or unassign them there: removing them here would be undone by its "
            "next update.",
            code="scim_managed",
        )
    managed = managed_workspaces(org, user)
    clash = [pk for pk in (workspaces or ()) if pk in managed]
    if clash:
        groups = sorted({g for pk in clash for g in managed[pk]})
        raise Conflict(
            f"{user.display_name}'s access to this workspace comes from the SCIM group(s) "
            f"{', '.join(groups) or '(mapped)'}: change the group in your identity provider or "
            "the group mapping instead.",
            code="scim_managed",
        )
