"""Roles at both levels, ordered so that "at least admin" is an integer comparison."""

from django.db import models


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
