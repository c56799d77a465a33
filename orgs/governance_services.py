"""Writes on governance policies (docs/rules.md §9): set or remove one, validated per kind, audited.

Each kind's value is normalised before it is stored, so the readers in orgs.governance can
trust it. Lock order: organization row, then the policy row.
"""

from __future__ import annotations

import re

from django.db import transaction

from audit.services import record
from config.errors import Conflict, NotFound, ValidationFailed
from config.roles import Role
from members.models import User
from orgs.models import GovernancePolicy, Organization
from orgs.permissions import OrgCapability, require_org_capability

Kind = GovernancePolicy.Kind

DOMAIN_RE = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
MAX_DOMAINS = 50


def _invalid(message: str, field: str = "value") -> ValidationFailed:
    return ValidationFailed(message, fields={field: message}, code="invalid_policy")


def _role(value: object, allowed: tuple[Role, ...], field: str) -> Role:
    try:
        text = str(value)
        role = Role(int(text)) if text.isdigit() else Role.from_name(text)
    except ValueError:
        role = None
    if role not in allowed:
        names = " or ".join(r.label for r in allowed)
        raise _invalid(f"Choose {names}.", field)
    return role


def _clean_domains(value: dict) -> dict:
    raw = value.get("domains", [])
    if isinstance(raw, str):
        raw = re.split(r"[\s,;]+", raw)
    if not isinstance(raw, list | tuple):
        raise _invalid("Give a list of domains.", "domains")
    domains: list[str] = []
    for item in raw:
        domain = str(item).strip().lower().lstrip("@").rstrip(".")
        if not domain:
            continue
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise _invalid(f"{item} is not a valid domain.", "domains") from None
        if not DOMAIN_RE.match(domain):
            raise _invalid(f"{item} is not a valid domain (e.g. acme.com).", "domains")
        if domain not in domains:
            domains.append(domain)
    if not domains:
        raise _invalid(
            "Give at least one domain; to allow every domain, remove the policy.", "domains"
        )
    if len(domains) > MAX_DOMAINS:
        raise _invalid(f"At most {MAX_DOMAINS} domains.", "domains")
    return {"domains": domains}


def _clean_sync_role(value: dict) -> dict:
    # The workspace default already needs admin: a policy can only keep or raise it.
    role = _role(value.get("role"), (Role.ADMIN, Role.OWNER), "role")
    return {"role": int(role)}


def _clean_default_grant(org: Organization, value: dict) -> dict:
    from workspaces.models import Workspace

    raw = value.get("workspaces", [])
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list | tuple):
        raise _invalid("Give a list of workspace ids.", "workspaces")
    wanted = list(dict.fromkeys(str(w).strip() for w in raw if str(w).strip()))
    if not wanted:
        raise _invalid(
            "Choose at least one workspace; to grant none, remove the policy.", "workspaces"
        )
    linked = set(
        Workspace.objects.filter(organization=org, public_id__in=wanted).values_list(
            "public_id", flat=True
        )
    )
    missing = [w for w in wanted if w not in linked]
    if missing:
        raise _invalid(
            "Default access can only be to workspaces linked to this organization "
            f"(not {', '.join(missing)}).",
            "workspaces",
        )
    role = _role(value.get("role", Role.MEMBER), (Role.MEMBER, Role.ADMIN), "role")
    return {"workspaces": wanted, "role": int(role)}


def _clean_two_factor(actor: User, value: dict) -> dict:
    enabled = value.get("enabled")
    if isinstance(enabled, str):
        word = enabled.strip().lower()
        enabled = True if word in {"1", "true", "on", "yes"} else enabled
        enabled = False if word in {"0", "false", "off", "no"} else enabled
    if not isinstance(enabled, bool):
        raise _invalid("Say whether two-factor sign-in is required (true or false).", "enabled")
    if enabled:
        from members.two_factor import has_two_factor

        if not has_two_factor(actor):
            raise Conflict(
                "Turn on two-factor sign-in for your own account first (Account › Two-factor "
                "sign-in), so you are not locked out of the organization's workspaces.",
                code="two_factor_required_for_actor",
            )
    return {"enabled": enabled}


def _clean_support_access(value: dict) -> dict:
    """off / for N hours (stored as the moment it ends) / always; see orgs/support_access.py."""
    from datetime import timedelta

    from django.utils import timezone

    from orgs.support_access import MAX_HOURS

    mode = str(value.get("mode", "")).strip().lower()
    if mode in ("off", "always"):
        return {"mode": mode}
    if mode != "hours":
        raise _invalid("Choose off, for a number of hours, or always.", "mode")
    try:
        hours = int(str(value.get("hours", "")).strip())
    except ValueError:
        hours = 0
    if not 1 <= hours <= MAX_HOURS:
        raise _invalid(f"Give a number of hours from 1 to {MAX_HOURS}.", "hours")
    until = timezone.now() + timedelta(hours=hours)
    return {"mode": "until", "hours": hours, "until": until.isoformat()}


def clean_policy_value(*, actor: User, org: Organization, kind: str, value: object) -> dict:
    """The normalised value for `kind`, or ValidationFailed naming the field."""
    if kind not in Kind.values:
        raise ValidationFailed(
            f"Unknown policy {kind!r}; choose one of {', '.join(Kind.values)}.",
            fields={"kind": "Unknown policy."},
            code="invalid_policy",
        )
    if not isinstance(value, dict):
        raise _invalid("The policy value must be an object.")
    if kind == Kind.ALLOWED_EMAIL_DOMAINS:
        return _clean_domains(value)
    if kind == Kind.SYNC_MIN_ROLE:
        return _clean_sync_role(value)
    if kind == Kind.DEFAULT_WORKSPACE_GRANT:
        return _clean_default_grant(org, value)
    if kind == Kind.SUPPORT_ACCESS:
        return _clean_support_access(value)
    if kind == Kind.REQUIRE_SSO:
        from orgs.sso.enforcement import clean_require_sso

        return clean_require_sso(org, value)
    return _clean_two_factor(actor, value)


def _lock(actor: User, org: Organization) -> Organization:
    from orgs.services import lock_org

    org = lock_org(org)
    require_org_capability(actor, org, OrgCapability.MANAGE_GOVERNANCE)
    return org


@transaction.atomic
def policy_set(*, actor: User, org: Organization, kind: str, value: dict) -> GovernancePolicy:
    """Create or change the org's policy of this kind; every linked workspace inherits it."""
    org = _lock(actor, org)
    value = clean_policy_value(actor=actor, org=org, kind=kind, value=value)
    policy = (
        GovernancePolicy.objects.select_for_update().filter(organization=org, kind=kind).first()
    )
    before = policy.value if policy else None
    if policy is not None and before == value:
        return policy
    if policy is None:
        policy = GovernancePolicy.objects.create(
            organization=org, kind=kind, value=value, updated_by=actor
        )
    else:
        policy.value = value
        policy.updated_by = actor
        policy.save(update_fields=["value", "updated_by", "updated_at"])
    record(
        actor=actor,
        action="governance.policy_updated" if before is not None else "governance.policy_created",
        organization=org,
        target=policy,
        target_label=policy.get_kind_display(),
        details={"kind": kind, "before": before, "after": value},
    )
    return policy


@transaction.atomic
def policy_delete(*, actor: User, org: Organization, kind: str) -> None:
    """Remove the org's policy of this kind; linked workspaces fall back to the defaults."""
    org = _lock(actor, org)
    policy = (
        GovernancePolicy.objects.select_for_update().filter(organization=org, kind=kind).first()
    )
    if policy is None:
        raise NotFound("That policy is not set.", code="policy_not_set")
    record(
        actor=actor,
        action="governance.policy_deleted",
        organization=org,
        target=policy,
        target_label=policy.get_kind_display(),
        details={"kind": kind, "before": policy.value, "after": None},
    )
    policy.delete()
