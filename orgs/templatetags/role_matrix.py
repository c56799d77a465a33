"""`{% role_matrix "org" %}` / `{% role_matrix "workspace" workspace %}`: the capability table
as a short matrix (capability × role), where a role is picked. Read from orgs/permissions.py and
workspaces/permissions.py, so there is no second copy of the rules."""

from typing import Any

from django import template

from config.roles import Role
from orgs.permissions import ORG_CAPABILITIES
from workspaces.permissions import WORKSPACE_CAPABILITIES, WorkspaceCapability, required_role

register = template.Library()


def matrix(level: str, workspace=None) -> dict:
    needs: dict[Any, Role]
    if level == "org":
        needs = dict(ORG_CAPABILITIES)
    else:
        needs = {
            cap: (required_role(workspace, cap) if workspace is not None else minimum)
            for cap, minimum in WORKSPACE_CAPABILITIES.items()
        }
    roles = list(Role)
    return {
        "level": level,
        "roles": roles,
        "rows": [
            {
                "capability": cap.value[0].upper() + cap.value[1:],
                "cells": [role >= needed for role in roles],
                "raised": level == "workspace"
                and cap == WorkspaceCapability.WRITE_SYNCS
                and needed > WORKSPACE_CAPABILITIES[cap],
            }
            for cap, needed in needs.items()
        ],
    }


@register.inclusion_tag("_role_matrix.html")
def role_matrix(level: str, workspace=None):
    return matrix(level, workspace)
