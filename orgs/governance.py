"""Reading the governance policies an org's workspaces inherit (writes live in orgs.services)."""

from config.roles import Role
from orgs.models import GovernancePolicy


def policy_value(organization_id: int, kind: str) -> dict | None:
    value = (
        GovernancePolicy.objects.filter(organization_id=organization_id, kind=kind)
        .values_list("value", flat=True)
        .first()
    )
    return value


def sync_min_role(organization_id: int) -> Role:
    value = policy_value(organization_id, GovernancePolicy.Kind.SYNC_MIN_ROLE) or {}
    return Role(value.get("role", Role.ADMIN))
