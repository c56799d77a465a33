"""Just-in-time provisioning: a person signing in through the org's identity provider (SAML
here, OIDC alongside) gets an account and a seat in the org, under every policy.

`sso_provision_member` is the one way in for every SSO protocol; its signature is stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from audit.services import record
from billing.limits import check_member_limit
from config.errors import PermissionDenied
from config.roles import Role
from members.models import OrgMembership, User, normalize_email
from orgs.governance import check_email_allowed, default_workspace_grant
from orgs.models import Organization
from orgs.sso.domains import verified_domain_of
from workspaces.models import Workspace, WorkspaceMembership

# New members join with the lowest org role; their workspace access comes from the org's
# default workspace grant policy (SPEC §9 c), like an invitation without grants.
SSO_DEFAULT_ORG_ROLE = Role.MEMBER
SOURCES = ("saml", "oidc")


@dataclass
class ProvisionResult:
    user: User
    membership: OrgMembership
    created_account: bool = False
    joined: bool = False  # the org membership was created now
    granted: list[WorkspaceMembership] = field(default_factory=list)


class SsoRefused(PermissionDenied):
    """The identity provider vouched for someone this org may not let in this way."""

    code = "sso_refused"


@transaction.atomic
def sso_provision_member(
    *, org: Organization, email: str, full_name: str, source: str
) -> ProvisionResult:
    """The account and org membership for a person the org's identity provider signed in.

    Refused (SsoRefused / ValidationFailed / LimitExceeded, nothing changed) when the email is
    not in one of the org's verified domains, the allowed-domains policy excludes it, the
    account is deactivated, or the plan has no seat left. A first sign-in creates the account
    (its email counts as verified: the org proved it owns the domain and its IdP vouched for
    the address) and the membership with the default role and the default workspace grant.
    An existing member is left as they are (roles are never changed by signing in).
    """
    from members.services import workspace_grant_via_org
    from members.verification import email_verified_by_token
    from orgs.services import lock_org

    if source not in SOURCES:
        raise ValueError(f"unknown SSO source {source!r}")
    email = normalize_email(email or "")
    try:
        validate_email(email)
    except ValidationError:
        raise SsoRefused(
            "The identity provider did not send a valid email address.", code="sso_no_email"
        ) from None
    org = lock_org(org)
    domain = email.rsplit("@", 1)[1]
    if verified_domain_of(domain) != org.pk:
        raise SsoRefused(
            f"{email} is not in a domain verified by {org.name}, so its identity provider "
            "cannot sign it in.",
            code="sso_domain_not_verified",
        )
    check_email_allowed(org.pk, email, doing=f"join {org.name}")
    user = User.objects.select_for_update().filter(email=email).first()
    created = user is None
    if user is not None and (user.is_staff or user.is_superuser):
        # Our own staff (support, operators) never sign in through a customer's IdP.
        raise SsoRefused(
            "This account cannot sign in through an organization's identity provider.",
            code="sso_staff_account",
        )
    if user is not None and not user.is_active:
        raise SsoRefused(
            "This account is deactivated; ask an administrator of the organization.",
            code="account_inactive",
        )
    membership = None
    if user is not None:
        membership = (
            OrgMembership.objects.select_for_update().filter(organization=org, user=user).first()
        )
    if membership is not None:
        assert user is not None  # a membership belongs to an existing account
        if not user.email_verified_at:
            email_verified_by_token(user=user, via=source)
            user.refresh_from_db(fields=["email_verified_at"])
        return ProvisionResult(user=user, membership=membership)

    check_member_limit(org, adding=1)
    name = " ".join((full_name or "").split())[:150]
    if created:
        user = User.objects.create_user(
            email=email, password=None, full_name=name, email_verified_at=timezone.now()
        )
    else:
        assert user is not None  # not created: the account exists
        if not user.email_verified_at:
            email_verified_by_token(user=user, via=source)
            user.refresh_from_db(fields=["email_verified_at"])
    membership = OrgMembership.objects.create(
        user=user, organization=org, role=SSO_DEFAULT_ORG_ROLE, joined_at=timezone.now()
    )
    record(
        actor=None,
        action="sso.member_provisioned",
        organization=org,
        target=user,
        details={
            "role": Role(membership.role).label,
            "source": source,
            "membership": membership.public_id,
            "created_account": created,
        },
    )
    result = ProvisionResult(user=user, membership=membership, created_account=created, joined=True)
    policy = default_workspace_grant(org.pk)
    if policy:
        ws_ids, role = policy
        # Lock order as everywhere: organization → workspace rows by id → membership rows.
        workspaces = list(
            Workspace.objects.select_for_update()
            .filter(organization=org, public_id__in=ws_ids)
            .order_by("pk")
        )
        existing = {
            m.workspace_id: m
            for m in WorkspaceMembership.objects.select_for_update()
            .filter(user=user, workspace__in=workspaces)
            .order_by("workspace_id")
        }
        for ws in workspaces:
            m = workspace_grant_via_org(
                never_lower=True,
                actor=None,
                org=org,
                user=user,
                workspace=ws,
                role=role,
                existing=existing.get(ws.pk),
                details={"policy": "default_workspace_grant", "via": source},
            )
            m.workspace = ws
            result.granted.append(m)
    return result
