"""Support roles: two Django groups whose permissions decide which support actions a staff
user may take. Superuser is not needed for support work.

Tier 1 looks things up and handles the daily tickets (resend/revoke invitations, clear a
sign-in lock, verify an audit chain, read-only "view as admin" where the org allows it).
Tier 2 has everything of tier 1 plus the actions that change who controls an account or an
org: reset two-factor, recover ownership, switch to a sales-led plan, re-run a roll-up.
"""

from __future__ import annotations

from config.errors import PermissionDenied

TIER_1 = "Support tier 1"
TIER_2 = "Support tier 2"

# What support staff may *look at* in the admin: account-level facts (people, org names, plans,
# invitation delivery states, 2FA enrolment, chain verification results). Org data (members,
# workspaces, usage, audit events) is seen through "view as admin", under the org's consent.
VIEW_PERMISSIONS = [
    "members.view_user",
    "members.view_invitation",
    "members.view_twofactordevice",
    "orgs.view_organization",
    "billing.view_billingaccount",
    "billing.view_plan",
    "audit.view_chainverification",
]
TIER_1_PERMISSIONS = [
    *VIEW_PERMISSIONS,
    "support.resend_invitation",
    "support.clear_signin_lock",
    "support.verify_audit_chain",
    "support.view_as_admin",
]
TIER_2_PERMISSIONS = [
    *TIER_1_PERMISSIONS,
    "support.reset_two_factor",
    "support.recover_ownership",
    "support.switch_plan",
    "support.rerun_rollup",
]
GROUPS = {TIER_1: TIER_1_PERMISSIONS, TIER_2: TIER_2_PERMISSIONS}


def ensure_support_roles(*args, using="default", apps=None, **kwargs) -> dict[str, int]:
    """Create or update the tier groups (idempotent); returns {group: permission count}.

    Also the post_migrate receiver, so a fresh database has the groups without a step.
    """
    from django.contrib.auth.models import Group, Permission

    done = {}
    for name, codes in GROUPS.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        perms = []
        for code in codes:
            app_label, codename = code.split(".")
            perm = (
                Permission.objects.using(using)
                .filter(content_type__app_label=app_label, codename=codename)
                .first()
            )
            if perm is not None:  # absent only while migrating part of the way
                perms.append(perm)
        group.permissions.set(perms)
        done[name] = len(perms)
    return done


def require_support(engineer, permission: str) -> None:
    """Support actions need an active staff account holding the permission (a tier group)."""
    if (
        engineer is None
        or not engineer.is_authenticated
        or not engineer.is_active
        or not engineer.is_staff
        or not engineer.has_perm(f"support.{permission}")
    ):
        raise PermissionDenied(
            "This support action needs a support role that includes it "
            f"({'tier 2' if f'support.{permission}' not in TIER_1_PERMISSIONS else 'tier 1 or 2'}).",
            code="support_permission_required",
        )
