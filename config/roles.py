"""Roles at both levels, ordered so that "at least admin" is an integer comparison."""

from typing import Any

from django.db import models
from django.db.models import QuerySet

from config.errors import Conflict, NotFound, PermissionDenied


class Role(models.IntegerChoices):
    MEMBER = 10, "member"
    ADMIN = 20, "admin"
    OWNER = 30, "owner"

    @classmethod
    def from_name(cls, name: str) -> "Role":
        """`"admin"` → Role.ADMIN; raises ValueError for anything else."""
        for role in cls:
            if role.label == str(name).strip().lower():
                return role
        raise ValueError(f"Unknown role {name!r}: choose member, admin or owner.")

    @property
    def title(self) -> str:
        return self.label.title()


def role_at_least(role: Role | None, needed: Role) -> bool:
    """Whether `role` (None: not a member) reaches `needed`."""
    return role is not None and role >= needed


def require_role(role: Role | None, needed: Role, *, missing: str, where: str, doing: str) -> Role:
    """The one shape of every capability check, org or workspace (docs/rules.md §3): not a member
    → 404 `missing` (existence is not revealed); a lower role → 403 naming the role needed."""
    if role is None:
        raise NotFound(missing)
    if role < needed:
        raise PermissionDenied(
            f"You need the {needed.label} role or higher {where} to {doing}.",
            code="role_required",
        )
    return role


def require_another_owner(membership: Any, *, owners: QuerySet[Any], place: str) -> None:
    """Invariant 2 at either level: refuse to demote or remove `membership` (an org or workspace
    membership) while it is an owner and `owners` — that level's owners who can act — holds no
    one else. Call with the organization's or workspace's row locked."""
    if membership.role == Role.OWNER and not owners.exclude(pk=membership.pk).exists():
        raise Conflict(
            f"{membership.user.display_name} is the last owner of {place}. "
            "Make someone else an owner first.",
            code="last_owner",
        )
