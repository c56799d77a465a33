"""A model of every action sequence: the permission system's invariants after every step.

Hypothesis drives every state-changing service of organizations, workspaces, members,
invitations, governance and API tokens, called by randomly chosen actors (allowed or not)
over five people, two organizations and five workspaces (a fixed seed database, below). After
every step it checks against the database:

- docs/rules.md invariants 1–3: a workspace is in at most one live org; every live org and every
  workspace has an owner; one membership per (user, org) and (user, workspace);
- invariant 4: a refused action changes nothing and writes no audit event; a successful one
  that changed something wrote at least one event (exactly one where it changes one thing);
  every chain an action wrote to still verifies;
- invariant 6, no escalation: every gain of power — a person's org role, or their effective
  power over a workspace (the higher of their workspace role and, while it is linked, their
  org role) — is traced to an actor who held the right to give it: the actor already had that
  power there, or the workspace was linked by one of its owners, or created by the actor, or
  the person accepted an invitation whose grants were checked when it was issued;
- single sign-on: a person the org's identity provider vouches for (JIT provisioning, shared by
  SAML and OIDC) may gain only the org's default role and its default workspace grant, and only
  in the org that verified their email's domain;
- invariant 7, policies hold: whoever gains access to a linked workspace is a member of its
  org (a seat), has an address in the org's allowed domains, and members plus pending
  invitations stay within the plan's seats.

The run is derandomized (same examples on every run, so CI is never green or red by chance);
a failure prints the steps that reproduce it. TRUST_EXAMPLES / TRUST_STEPS raise the effort
locally, e.g. `TRUST_EXAMPLES=500 make test PYTEST_ARGS=tests/trust`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from audit.chain import verify_chain
from audit.models import AuditEvent
from billing.models import BillingAccount
from config.errors import DomainError
from config.roles import Role
from members import account_services, lifecycle, sessions
from members import invitations as inv_services
from members import services as member_services
from members import workspace_invitations as ws_inv
from members.account_models import EmailChange, UserSession
from members.models import (
    ApiToken,
    Invitation,
    InvitationGrant,
    OrgMembership,
    TwoFactorDevice,
    User,
    WorkspaceInvitation,
)
from members.tokens import token_create, token_revoke
from orgs import governance_services
from orgs import services as org_services
from orgs.governance import allowed_email_domains
from orgs.models import GovernancePolicy, Organization
from orgs.scim import services as scim_services
from orgs.scim.models import GroupMapping, ScimGrant, ScimGroup, ScimToken, ScimUser
from orgs.sso import domains as sso_domains
from orgs.sso import oidc_setup as sso_oidc_setup
from orgs.sso import saml as sso_saml
from orgs.sso.enforcement import requires_sso, sso_protocol
from orgs.sso.models import OidcConnection, SamlConnection, VerifiedDomain
from orgs.sso.provisioning import SSO_DEFAULT_ORG_ROLE, sso_provision_member
from reviews import services as review_services
from reviews.models import AccessReview, AccessReviewItem
from support import services as support_services
from support.roles import TIER_2, ensure_support_roles
from workspaces import services as ws_services
from workspaces.models import Workspace, WorkspaceMembership

pytestmark = pytest.mark.django_db

EMAILS = [
    "alice@acme.test",
    "bob@acme.test",
    "carol@acme.test",
    "erin@evil.test",
    "frank@acme.test",
]
NEW_EMAILS = ["new@acme.test", "mallory@evil.test"]
SSO_EMAILS = ["sso.new@acme.test", "sso.other@evil.test", "carol@acme.test", "erin@evil.test"]
IDP = type("IdentityProvider", (), {"pk": -1, "email": "(the org's identity provider)"})()
ROLES = st.sampled_from([Role.MEMBER, Role.ADMIN, Role.OWNER])
# Uniform picks (st.integers leans towards small values, which would mostly pick the first person).
PICK = st.sampled_from(range(64))


def _seed() -> None:
    """Five people, two orgs, five workspaces, arranged so that every kind of power meets."""
    users = {
        e: User.objects.create_user(
            e, "x", full_name=e.split("@")[0].title(), email_verified_at=timezone.now()
        )
        for e in EMAILS
    }
    alice, bob, carol, erin, frank = (users[e] for e in EMAILS)
    prod = ws_services.workspace_create(actor=alice, name="Prod")
    stage = ws_services.workspace_create(actor=alice, name="Stage")
    xeno_ws = ws_services.workspace_create(actor=erin, name="Xeno WS")
    franks = ws_services.workspace_create(actor=frank, name="Franks")
    carols = ws_services.workspace_create(actor=carol, name="Carols")
    acme = org_services.org_create(actor=alice, name="Acme", workspace=prod)
    org_services.workspace_link(actor=alice, org=acme, workspace=stage)
    org_services.org_create(actor=erin, name="Xeno", workspace=xeno_ws)
    OrgMembership.objects.create(user=bob, organization=acme, role=Role.ADMIN)
    OrgMembership.objects.create(user=carol, organization=acme, role=Role.MEMBER)
    for user, ws, role, source in [
        (bob, prod, Role.ADMIN, "org"),
        (carol, prod, Role.MEMBER, "org"),
        (erin, franks, Role.ADMIN, "direct"),  # an org owner who administers another's workspace
        (bob, franks, Role.MEMBER, "direct"),
        (frank, carols, Role.ADMIN, "direct"),
    ]:
        WorkspaceMembership.objects.create(
            user=user, workspace=ws, role=role, source=source, granted_by=user
        )
    GovernancePolicy.objects.create(
        organization=acme, kind="allowed_email_domains", value={"domains": ["acme.test"]}
    )
    engineer = User.objects.create_user(
        "sue@support.test",
        "x",
        full_name="Sue Support",
        is_staff=True,
        email_verified_at=timezone.now(),
    )
    ensure_support_roles()
    engineer.groups.add(Group.objects.get(name=TIER_2))
    # Acme has verified acme.test, so its identity provider may provision people there.
    VerifiedDomain.objects.create(
        organization=acme, domain="acme.test", token="seed", verified_at=timezone.now()
    )
    plan = BillingAccount.objects.get(organization=acme).plan
    plan.max_members = 6
    plan.save()
    # Acme's identity provider can provision from the start (the rules may add and revoke more).
    scim_services.scim_token_create(actor=alice, org=acme, name="IdP")


def _snapshot() -> dict:
    """Everything the permission system decides, as comparable sets."""
    return {
        "orgs": set(Organization.objects.values_list("pk", "name", "slug", "deleted_at")),
        "org_members": set(
            OrgMembership.objects.values_list("user", "organization", "role", "suspended_at")
        ),
        "workspaces": set(Workspace.objects.values_list("pk", "name", "organization")),
        "ws_members": set(
            WorkspaceMembership.objects.values_list("user", "workspace", "role", "source")
        ),
        "invitations": set(
            Invitation.objects.values_list("pk", "status", "token_hash", "expires_at", "org_role")
        ),
        "grants": set(InvitationGrant.objects.values_list("invitation", "workspace", "role")),
        "ws_invitations": set(WorkspaceInvitation.objects.values_list("pk", "status")),
        "policies": {
            (p.organization_id, p.kind, str(p.value)) for p in GovernancePolicy.objects.all()
        },
        "tokens": set(ApiToken.objects.values_list("pk", "revoked_at")),
        "users": set(User.objects.values_list("pk", "email", "full_name", "is_active")),
        "email_changes": set(EmailChange.objects.values_list("pk", "confirmed_at", "cancelled_at")),
        "two_factor": set(TwoFactorDevice.objects.values_list("user", "confirmed_at")),
        "sessions": set(UserSession.objects.values_list("pk", flat=True)),
        "reviews": set(AccessReview.objects.values_list("pk", "status")),
        "review_items": set(AccessReviewItem.objects.values_list("pk", "decision", "new_role")),
        "scim_tokens": set(ScimToken.objects.values_list("pk", "revoked_at")),
        "scim_users": set(ScimUser.objects.values_list("pk", "user", "active", "user_name")),
        "scim_groups": {
            (g.pk, g.display_name, tuple(sorted(g.members.values_list("pk", flat=True))))
            for g in ScimGroup.objects.all()
        },
        "scim_mappings": set(
            GroupMapping.objects.values_list("organization", "group_name", "workspace", "role")
        ),
        "scim_grants": set(ScimGrant.objects.values_list("scim_user", "workspace", "role")),
        "verified_domains": set(
            VerifiedDomain.objects.values_list("pk", "organization", "domain", "verified_at")
        ),
        "saml": set(SamlConnection.objects.values_list("organization", "idp_entity_id", "enabled")),
        "oidc": set(OidcConnection.objects.values_list("organization", "issuer", "enabled")),
    }


_IDP_METADATA: list[str] = []


def idp_metadata() -> str:
    """One real IdP's metadata (pysaml2, signing key made once per test process)."""
    if not _IDP_METADATA:
        import tempfile
        from pathlib import Path

        from tests.sso.saml_idp import TestIdp

        _IDP_METADATA.append(TestIdp(Path(tempfile.mkdtemp(prefix="sm-idp-"))).metadata())
    return _IDP_METADATA[0]


@dataclass
class Powers:
    """Org roles and effective workspace power, keyed by (user pk, org/workspace pk)."""

    org: dict = field(default_factory=dict)
    ws: dict = field(default_factory=dict)
    ws_role: dict = field(default_factory=dict)
    ws_org: dict = field(default_factory=dict)

    @classmethod
    def read(cls) -> Powers:
        p = cls()
        live_orgs = set(Organization.objects.alive().values_list("pk", flat=True))
        # A suspended member holds no power in the org or its workspaces: unsuspending gives it
        # back, so it must be traced to an actor who could have given it.
        suspended = set(
            OrgMembership.objects.filter(suspended_at__isnull=False).values_list(
                "user", "organization"
            )
        )
        p.org = {
            (u, o): r
            for u, o, r in OrgMembership.objects.values_list("user", "organization", "role")
            if o in live_orgs and (u, o) not in suspended
        }
        p.ws_org = dict(Workspace.objects.values_list("pk", "organization"))
        p.ws_role = {
            (u, w): r
            for u, w, r in WorkspaceMembership.objects.values_list("user", "workspace", "role")
            if (u, p.ws_org.get(w)) not in suspended
        }
        p.ws = dict(p.ws_role)
        for (u, o), r in p.org.items():
            for w, wo in p.ws_org.items():
                if wo == o:
                    p.ws[(u, w)] = max(p.ws.get((u, w), 0), r)
        return p


def _needed(role: int) -> int:
    """Giving the owner role needs an owner; anything below, an admin."""
    return Role.OWNER if role >= Role.OWNER else Role.ADMIN


class PermissionModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        cache.clear()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        _seed()
        self.users = list(User.objects.filter(is_staff=False).order_by("pk"))
        self.engineer = User.objects.get(email="sue@support.test")
        self.tokens: dict[int, str] = {}  # invitation pk → latest raw token
        self.ws_tokens: dict[int, str] = {}
        # invitation pk → (org role, {workspace pk: role}) as checked when it was issued
        self.approved: dict[int, tuple[int, dict[int, int]]] = {}
        self.ws_approved: dict[int, tuple[int, int]] = {}  # ws invitation pk → (ws pk, role)
        self.refused = 0
        self.done = 0

    def teardown(self):
        # Roll the whole example back: the next one starts from the same seed database.
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- picking objects (any org's, any role's: refusals are half the point) ---------------

    def _user(self, i):
        return User.objects.get(pk=self.users[i % len(self.users)].pk)  # fresh: emails change

    # An even index picks among what the actor belongs to, an odd one among everything: half
    # the attempts are plausible (deep sequences), half reach into other orgs and workspaces.

    @staticmethod
    def _choose(rows, i):
        return rows[(i // 2) % len(rows)] if rows else None

    def _org(self, i, actor=None):
        orgs = Organization.objects.order_by("pk")
        if actor is not None and i % 2 == 0:
            orgs = orgs.filter(memberships__user=actor) or orgs
        return self._choose(list(orgs), i)

    def _workspace(self, i, actor=None):
        workspaces = Workspace.objects.order_by("pk")
        if actor is not None and i % 2 == 0:
            workspaces = (
                workspaces.filter(
                    Q(memberships__user=actor) | Q(organization__memberships__user=actor)
                ).distinct()
                or workspaces
            )
        return self._choose(list(workspaces), i)

    def _org_membership(self, i, actor=None):
        rows = OrgMembership.objects.select_related("user").order_by("pk")
        if actor is not None and i % 2 == 0:
            rows = rows.filter(organization__memberships__user=actor) or rows
        return self._choose(list(rows), i)

    def _ws_membership(self, i, actor=None):
        rows = WorkspaceMembership.objects.select_related("user", "workspace").order_by("pk")
        if actor is not None and i % 2 == 0:
            rows = rows.filter(workspace__memberships__user=actor) or rows
        return self._choose(list(rows), i)

    def _invitation(self, i):
        rows = list(Invitation.objects.select_related("organization").order_by("pk"))
        return rows[i % len(rows)] if rows else None

    # --- one step, checked ------------------------------------------------------------------

    def _step(
        self,
        actor,
        call,
        *,
        one_event=False,
        accepted=None,
        ws_accepted=None,
        recovery=None,
        sso=None,
        asks=False,
        scim=None,
    ):
        """Run one service call and check it. `asks`: the action may be a request that changes
        no access state but is itself audited (support asking owners to confirm)."""
        before, powers = _snapshot(), Powers.read()
        seats_before = self._seats()
        last_event = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        try:
            result = call()
        except DomainError:
            self.refused += 1
            assert _snapshot() == before, "a refused action changed something"
            assert not AuditEvent.objects.filter(pk__gt=last_event).exists(), (
                "a refused action wrote an audit event"
            )
            return None
        self.done += 1
        after = _snapshot()
        new_events = AuditEvent.objects.filter(pk__gt=last_event)
        events = new_events.count()
        for chain_key in set(new_events.values_list("chain_key", flat=True)):
            chain = verify_chain(chain_key)  # not `result`: that is the service's answer
            assert chain.ok, f"audit chain {chain_key} broken: {chain.problem}"
        if after == before and asks:
            assert events <= 1, "a request for confirmation wrote more than its one event"
        elif after == before:
            assert events == 0, "an action that changed nothing wrote an audit event"
        elif one_event:
            assert events == 1, f"one change wrote {events} audit events"
        else:
            assert events >= 1, "a change wrote no audit event"
        self._check_no_escalation(actor, powers, before, accepted, ws_accepted, recovery, sso, scim)
        self._check_policies(before, seats_before)
        return result

    def _check_no_escalation(
        self,
        actor,
        before: Powers,
        snap_before,
        accepted,
        ws_accepted,
        recovery,
        sso=None,
        scim=None,
    ):
        # sso = (org pk, email): the org's identity provider vouched for this address.
        sso_user = None
        if sso is not None:
            sso_user = User.objects.filter(email=sso[1]).values_list("pk", flat=True).first()
        after = Powers.read()
        new_orgs = {o for o, *_ in _snapshot()["orgs"]} - {o for o, *_ in snap_before["orgs"]}
        new_ws = set(after.ws_org) - set(before.ws_org)
        newly_linked = {
            w
            for w, o in after.ws_org.items()
            if o and before.ws_org.get(w) != o and w not in new_ws
        }
        for (u, o), role in after.org.items():
            if role <= before.org.get((u, o), 0):
                continue
            if o in new_orgs and u == actor.pk:
                continue  # the creator of an organization owns it
            if accepted and u == actor.pk and role <= accepted[0]:
                continue  # the invitation's org role, checked when it was issued
            if recovery is not None and o == recovery[0] and not recovery[1]:
                continue  # support's ownership recovery, only while no owner can act
            if sso and u == sso_user and o == sso[0] and role <= SSO_DEFAULT_ORG_ROLE:
                continue  # JIT provisioning: the default role, in the org that owns the domain
            if scim is not None and o == scim and role <= Role.MEMBER:
                continue  # the org's identity provider provisions member seats only
            assert before.org.get((actor.pk, o), 0) >= _needed(role), (
                f"escalation: user {u} got org role {Role(role).label} in org {o} from "
                f"{actor.email}, who held {before.org.get((actor.pk, o))}"
            )
        for (u, w), power in after.ws.items():
            if power <= before.ws.get((u, w), 0) or w in new_ws:
                continue  # no gain, or a workspace created in this step (by the actor)
            if w in newly_linked:
                # Linking hands the workspace to the org's people: only its owner may do that.
                assert before.ws_role.get((actor.pk, w), 0) >= Role.OWNER, (
                    f"escalation: workspace {w} was linked by {actor.email}, who was not its owner"
                )
                continue
            if accepted and u == actor.pk:
                org_role, grants = accepted
                policy_role = self._policy_grant_role(after.ws_org.get(w), w)
                if power <= max(grants.get(w, 0), org_role, policy_role):
                    continue
            if recovery is not None and after.ws_org.get(w) == recovery[0] and not recovery[1]:
                continue
            if (
                sso
                and u == sso_user
                and after.ws_org.get(w) == sso[0]
                and power <= max(SSO_DEFAULT_ORG_ROLE, self._policy_grant_role(sso[0], w))
            ):
                continue  # the default role and the default workspace grant, nothing more
            if ws_accepted and u == actor.pk:
                ws_pk, role = ws_accepted
                if w == ws_pk and power <= role:
                    continue
            if scim is not None and after.ws_org.get(w) == scim:
                # SCIM gives a member seat and the roles owners mapped its groups to (the
                # mapping rule checks that only an owner sets a mapping).
                mapped = GroupMapping.objects.filter(organization=scim, workspace=w)
                if power <= max([Role.MEMBER, *mapped.values_list("role", flat=True)]):
                    continue
            assert before.ws.get((actor.pk, w), 0) >= _needed(power), (
                f"escalation: user {u} got {Role(power).label} power over workspace {w} from "
                f"{actor.email}, who held {before.ws.get((actor.pk, w))}"
            )

    @staticmethod
    def _policy_grant_role(org_pk, ws_pk) -> int:
        if not org_pk:
            return 0
        policy = GovernancePolicy.objects.filter(
            organization=org_pk, kind="default_workspace_grant"
        ).first()
        if policy is None:
            return 0
        ws_id = Workspace.objects.filter(pk=ws_pk).values_list("public_id", flat=True).first()
        return policy.value.get("role", 0) if ws_id in policy.value.get("workspaces", []) else 0

    @staticmethod
    def _seats() -> dict[int, int]:
        seats = {}
        for org in Organization.objects.alive():
            seats[org.pk] = (
                OrgMembership.objects.filter(organization=org).count()
                + Invitation.objects.filter(organization=org, status="pending").count()
            )
        return seats

    def _check_policies(self, snap_before, seats_before):
        new_access = {(u, w) for u, w, *_ in _snapshot()["ws_members"]} - {
            (u, w) for u, w, *_ in snap_before["ws_members"]
        }
        for u, w in new_access:
            org_pk = Workspace.objects.filter(pk=w).values_list("organization", flat=True).first()
            if not org_pk:
                continue
            user = User.objects.get(pk=u)
            assert OrgMembership.objects.filter(organization=org_pk, user=user).exists(), (
                f"{user.email} entered linked workspace {w} without taking a seat in its org"
            )
            domains = allowed_email_domains(org_pk)
            assert not domains or user.email.rsplit("@", 1)[1] in domains, (
                f"{user.email} entered workspace {w} past the allowed-domains policy {domains}"
            )
        old_emails = {pk: email for pk, email, *_ in snap_before["users"]}
        for user in User.objects.filter(is_active=True):
            if old_emails.get(user.pk, user.email) == user.email:
                continue
            for org_pk in OrgMembership.objects.filter(user=user).values_list(
                "organization", flat=True
            ):
                domains = allowed_email_domains(org_pk)
                assert not domains or user.email.rsplit("@", 1)[1] in domains, (
                    f"{user.email}: an email change side-stepped org {org_pk}'s domains {domains}"
                )
        for org_pk, seats in self._seats().items():
            if seats > seats_before.get(org_pk, 0):
                plan = BillingAccount.objects.get(organization=org_pk).plan
                assert seats <= plan.max_members, f"org {org_pk} passed its plan's seats"

    # --- organizations and workspaces -------------------------------------------------------

    @rule(a=PICK, w=PICK, with_ws=st.booleans())
    def org_create(self, a, w, with_ws):
        actor = self._user(a)
        ws = self._workspace(w, actor) if with_ws else None
        self._step(
            actor, lambda: org_services.org_create(actor=actor, name="New Org", workspace=ws)
        )

    @rule(a=PICK, o=PICK)
    def org_update(self, a, o):
        actor = self._user(a)
        org = self._org(o, actor)
        self._step(
            actor,
            lambda: org_services.org_update(actor=actor, org=org, name=f"Renamed {a}"),
            one_event=True,
        )

    @rule(a=PICK, o=PICK)
    def org_delete(self, a, o):
        actor = self._user(a)
        org = self._org(o, actor)
        self._step(
            actor, lambda: org_services.org_delete(actor=actor, org=org, confirm_slug=org.slug)
        )

    @rule(a=PICK, o=PICK, w=PICK)
    def workspace_link(self, a, o, w):
        actor = self._user(a)
        org, ws = self._org(o, actor), self._workspace(w, actor)
        if ws is not None:
            self._step(
                actor, lambda: org_services.workspace_link(actor=actor, org=org, workspace=ws)
            )

    @rule(a=PICK, o=PICK, w=PICK)
    def workspace_unlink(self, a, o, w):
        actor = self._user(a)
        org, ws = self._org(o, actor), self._workspace(w, actor)
        if ws is not None:
            self._step(
                actor,
                lambda: org_services.workspace_unlink(actor=actor, org=org, workspace=ws),
                one_event=True,
            )

    @rule(a=PICK, o=PICK)
    def workspace_create_linked(self, a, o):
        actor = self._user(a)
        org = self._org(o, actor)
        self._step(
            actor,
            lambda: org_services.workspace_create_linked(actor=actor, org=org, name="Fresh"),
        )

    @rule(a=PICK)
    def workspace_create(self, a):
        actor = self._user(a)
        self._step(
            actor, lambda: ws_services.workspace_create(actor=actor, name="Own"), one_event=True
        )

    @rule(a=PICK, w=PICK)
    def workspace_delete(self, a, w):
        actor = self._user(a)
        ws = self._workspace(w, actor)
        if ws is not None:
            self._step(
                actor,
                lambda: ws_services.workspace_delete(
                    actor=actor, workspace=ws, confirm_name=ws.name
                ),
                one_event=True,
            )

    @rule(a=PICK, o=PICK, t=PICK, step_down=st.booleans())
    def ownership_transfer(self, a, o, t, step_down):
        actor = self._user(a)
        org, target = self._org(o, actor), self._org_membership(t, actor)
        if target is not None:
            self._step(
                actor,
                lambda: org_services.ownership_transfer(
                    actor=actor, org=org, to_membership=target, step_down=step_down
                ),
                one_event=True,
            )

    # --- org members ------------------------------------------------------------------------

    @rule(a=PICK, o=PICK, t=PICK, role=ROLES)
    def member_change_role(self, a, o, t, role):
        actor = self._user(a)
        org, target = self._org(o, actor), self._org_membership(t, actor)
        if target is not None:
            self._step(
                actor,
                lambda: member_services.member_change_role(
                    actor=actor, org=org, membership=target, role=role
                ),
                one_event=True,
            )

    @rule(a=PICK, o=PICK, t=PICK, w=PICK, role=st.none() | ROLES)
    def member_set_workspace_access(self, a, o, t, w, role):
        actor = self._user(a)
        org, target, ws = (
            self._org(o, actor),
            self._org_membership(t, actor),
            self._workspace(w, actor),
        )
        if target is not None and ws is not None:
            self._step(
                actor,
                lambda: member_services.member_set_workspace_access(
                    actor=actor, org=org, membership=target, access={ws.pk: role}
                ),
                one_event=True,
            )

    @rule(a=PICK, o=PICK, t=PICK)
    def member_remove(self, a, o, t):
        actor = self._user(a)
        org, target = self._org(o, actor), self._org_membership(t, actor)
        if target is not None:
            self._step(
                actor,
                lambda: member_services.member_remove(actor=actor, org=org, membership=target),
                one_event=True,
            )

    @rule(a=PICK, o=PICK, t=PICK)
    def member_suspend(self, a, o, t):
        actor = self._user(a)
        org, target = self._org(o, actor), self._org_membership(t, actor)
        if target is not None:
            self._step(
                actor,
                lambda: lifecycle.member_suspend(actor=actor, org=org, membership=target),
                one_event=True,
            )

    @rule(a=PICK, o=PICK, t=PICK)
    def member_unsuspend(self, a, o, t):
        actor = self._user(a)
        org, target = self._org(o, actor), self._org_membership(t, actor)
        if target is not None:
            self._step(
                actor,
                lambda: lifecycle.member_unsuspend(actor=actor, org=org, membership=target),
                one_event=True,
            )

    @rule(a=PICK, o=PICK, e=PICK)
    def member_reinstate(self, a, o, e):
        actor = self._user(a)
        org = self._org(o, actor)
        removals = list(
            AuditEvent.objects.filter(organization=org, action="member.removed")
            .order_by("pk")
            .values_list("public_id", flat=True)
        )
        if removals:
            event_id = removals[e % len(removals)]
            self._step(
                actor,
                lambda: lifecycle.member_reinstate(actor=actor, org=org, event_id=event_id),
                one_event=True,
            )

    # --- access reviews ---------------------------------------------------------------------

    @rule(a=PICK, o=PICK, named=st.booleans(), unreviewed=st.sampled_from(["keep", "revoke"]))
    def review_start(self, a, o, named, unreviewed):
        actor = self._user(a)
        org = self._org(o, actor)
        reviewers = [actor.pk] if named else None
        self._step(
            actor,
            lambda: review_services.review_start(
                actor=actor,
                org=org,
                name="Review",
                due_at=timezone.now() + timedelta(days=7),
                unreviewed=unreviewed,
                reviewer_ids=reviewers,
            ),
            one_event=True,
        )

    @rule(
        a=PICK,
        i=PICK,
        decision=st.sampled_from(["keep", "change", "revoke"]),
        role=ROLES,
    )
    def review_decide(self, a, i, decision, role):
        actor = self._user(a)
        items = list(AccessReviewItem.objects.select_related("review__organization").order_by("pk"))
        if items:
            item = items[i % len(items)]
            self._step(
                actor,
                lambda: review_services.review_decide(
                    actor=actor,
                    org=item.review.organization,
                    review=item.review,
                    item_id=item.public_id,
                    decision=decision,
                    new_role=role,
                ),
                one_event=True,
            )

    @rule(a=PICK, r=PICK, at_due_date=st.booleans())
    def review_complete(self, a, r, at_due_date):
        reviews = list(
            AccessReview.objects.select_related("organization", "started_by").order_by("pk")
        )
        if not reviews:
            return
        review = reviews[r % len(reviews)]
        # At the due date nobody acts: revocations act as the owner who started the review.
        actor = review.started_by if at_due_date else self._user(a)
        if actor is None:
            return
        self._step(
            actor,
            lambda: review_services.review_complete(
                org=review.organization, review=review, actor=None if at_due_date else actor
            ),
        )

    @rule(a=PICK, o=PICK)
    def member_leave(self, a, o):
        actor = self._user(a)
        org = self._org(o, actor)
        self._step(
            actor, lambda: member_services.member_leave(actor=actor, org=org), one_event=True
        )

    # --- invitations ------------------------------------------------------------------------

    @rule(
        a=PICK,
        o=PICK,
        email=st.sampled_from(EMAILS + NEW_EMAILS),
        org_role=ROLES,
        w=PICK,
        grant=st.none() | ROLES,
    )
    def member_invite(self, a, o, email, org_role, w, grant):
        actor = self._user(a)
        org, ws = self._org(o, actor), self._workspace(w, actor)
        grants = {ws.pk: grant} if ws is not None and grant is not None else {}
        held = OrgMembership.objects.filter(user=actor, organization=org).first()
        result = self._step(
            actor,
            lambda: inv_services.member_invite(
                actor=actor, org=org, emails=[email], org_role=org_role, grants=grants
            ),
        )
        if result:
            # Checked when issued: the inviter held the right to give every role it carries.
            held_role = held.role if held else 0
            assert held_role >= _needed(max([org_role, *grants.values()])), (
                f"{actor.email} ({held_role}) issued an invitation beyond their rights"
            )
            (invitation,) = result
            self.tokens[invitation.pk] = invitation.token
            self.approved[invitation.pk] = (int(org_role), {k: int(v) for k, v in grants.items()})

    @rule(a=PICK, i=PICK)
    def invitation_resend(self, a, i):
        actor = self._user(a)
        invitation = self._invitation(i)
        if invitation is not None:
            result = self._step(
                actor,
                lambda: inv_services.invitation_resend(actor=actor, invitation=invitation),
                one_event=True,
            )
            if result:
                self.tokens[invitation.pk] = result[1]

    @rule(a=PICK, i=PICK)
    def invitation_revoke(self, a, i):
        actor = self._user(a)
        invitation = self._invitation(i)
        if invitation is not None:
            self._step(
                actor,
                lambda: inv_services.invitation_revoke(actor=actor, invitation=invitation),
                one_event=True,
            )

    @rule(u=PICK, i=PICK)
    def invitation_accept(self, u, i):
        user, invitation = self._user(u), self._invitation(i)
        if invitation is None or invitation.pk not in self.tokens:
            return
        token = self.tokens[invitation.pk]
        approved = self.approved.get(invitation.pk)
        if approved is None:
            return
        # Grants added later from inside a workspace were checked when they were added.
        org_role, grants = approved
        for g in InvitationGrant.objects.filter(invitation=invitation):
            grants.setdefault(g.workspace_id, g.role)
        self._step(
            user,
            lambda: inv_services.invitation_accept(user=user, token=token),
            accepted=(org_role, grants),
        )

    # --- inside a workspace -----------------------------------------------------------------

    @rule(a=PICK, w=PICK, email=st.sampled_from(EMAILS + NEW_EMAILS), role=ROLES)
    def workspace_member_invite(self, a, w, email, role):
        actor = self._user(a)
        ws = self._workspace(w, actor)
        if ws is None:
            return
        held = WorkspaceMembership.objects.filter(user=actor, workspace=ws).first()
        result = self._step(
            actor,
            lambda: ws_inv.workspace_member_invite(
                actor=actor, workspace=ws, email=email, role=role
            ),
            one_event=True,
        )
        if result is None:
            return
        assert (held.role if held else 0) >= _needed(role), (
            f"{actor.email} invited into {ws.name} beyond their workspace role"
        )
        if isinstance(result, Invitation):
            self.tokens[result.pk] = result.token
            org_role, grants = self.approved.get(result.pk, (Role.MEMBER, {}))
            grants[ws.pk] = max(grants.get(ws.pk, 0), int(role))
            self.approved[result.pk] = (org_role, grants)
        else:
            self.ws_tokens[result.pk] = result.token
            self.ws_approved[result.pk] = (ws.pk, int(role))

    @rule(u=PICK, i=PICK)
    def workspace_invitation_accept(self, u, i):
        if not self.ws_tokens:
            return
        pk = sorted(self.ws_tokens)[i % len(self.ws_tokens)]
        user, token = self._user(u), self.ws_tokens[pk]
        self._step(
            user,
            lambda: ws_inv.workspace_invitation_accept(user=user, token=token),
            ws_accepted=self.ws_approved[pk],
            one_event=True,
        )

    @rule(a=PICK, m=PICK, role=ROLES)
    def workspace_member_change_role(self, a, m, role):
        actor = self._user(a)
        membership = self._ws_membership(m, actor)
        if membership is not None:
            self._step(
                actor,
                lambda: ws_services.workspace_member_change_role(
                    actor=actor, membership=membership, role=role
                ),
                one_event=True,
            )

    @rule(a=PICK, m=PICK)
    def workspace_member_remove(self, a, m):
        actor = self._user(a)
        membership = self._ws_membership(m, actor)
        if membership is not None:
            self._step(
                actor,
                lambda: ws_services.workspace_member_remove(actor=actor, membership=membership),
                one_event=True,
            )

    # --- governance and tokens --------------------------------------------------------------

    @rule(
        a=PICK,
        o=PICK,
        domains=st.sampled_from([["acme.test"], ["evil.test"], ["acme.test", "evil.test"]]),
    )
    def policy_set_domains(self, a, o, domains):
        actor = self._user(a)
        org = self._org(o, actor)
        self._step(
            actor,
            lambda: governance_services.policy_set(
                actor=actor, org=org, kind="allowed_email_domains", value={"domains": domains}
            ),
            one_event=True,
        )

    @rule(a=PICK, o=PICK, w=PICK, role=st.sampled_from([Role.MEMBER, Role.ADMIN]))
    def policy_set_default_grant(self, a, o, w, role):
        actor = self._user(a)
        org, ws = self._org(o, actor), self._workspace(w, actor)
        if ws is not None:
            self._step(
                actor,
                lambda: governance_services.policy_set(
                    actor=actor,
                    org=org,
                    kind="default_workspace_grant",
                    value={"workspaces": [ws.public_id], "role": int(role)},
                ),
                one_event=True,
            )

    @rule(
        a=PICK, o=PICK, kind=st.sampled_from(["allowed_email_domains", "default_workspace_grant"])
    )
    def policy_delete(self, a, o, kind):
        actor = self._user(a)
        org = self._org(o, actor)
        self._step(
            actor,
            lambda: governance_services.policy_delete(actor=actor, org=org, kind=kind),
            one_event=True,
        )

    @rule(a=PICK)
    def token_create(self, a):
        actor = self._user(a)
        self._step(actor, lambda: token_create(actor=actor, name="script"), one_event=True)

    @rule(a=PICK, t=PICK)
    def token_revoke(self, a, t):
        actor = self._user(a)
        tokens = list(ApiToken.objects.order_by("pk"))
        if tokens:
            token = tokens[t % len(tokens)]
            self._step(actor, lambda: token_revoke(actor=actor, token=token), one_event=True)

    # --- account self-service ---------------------------------------------------------------

    @rule(a=PICK, name=st.sampled_from(["Renamed", "", "x" * 200]))
    def profile_update(self, a, name):
        actor = self._user(a)
        self._step(actor, lambda: account_services.profile_update(actor=actor, full_name=name))

    @rule(a=PICK, email=st.sampled_from(NEW_EMAILS + ["other@acme.test", "bob@acme.test"]))
    def email_change(self, a, email):
        """Request and confirm with the mailed token: every org's domain policy must hold."""
        actor = self._user(a)
        result = self._step(
            actor,
            lambda: account_services.email_change_request(
                actor=actor, new_email=email, password="x"
            ),
        )
        if result and result[1]:
            self._step(
                actor,
                lambda: account_services.email_change_confirm(actor=actor, token=result[1]),
            )
            actor.refresh_from_db()

    @rule(a=PICK)
    def account_close(self, a):
        actor = self._user(a)
        self._step(actor, lambda: account_services.account_close(actor=actor, password="x"))

    @rule(a=PICK, o=PICK, t=PICK)
    def member_sign_out_everywhere(self, a, o, t):
        actor = self._user(a)
        org, target = self._org(o, actor), self._org_membership(t, actor)
        if target is not None:
            self._step(
                actor,
                lambda: sessions.member_sign_out_everywhere(
                    actor=actor, org=org, membership=target
                ),
            )

    # --- support (a tier-2 engineer; the org's support-access policy decides some) ----------

    TICKET = {"ticket": "T-1", "reason": "customer asked"}

    @rule(i=PICK)
    def support_invitation_resend(self, i):
        invitation = self._invitation(i)
        if invitation is not None:
            result = self._step(
                self.engineer,
                lambda: support_services.support_invitation_resend(
                    engineer=self.engineer, invitation=invitation, **self.TICKET
                ),
                one_event=True,
            )
            if result is not None:  # the old link is dead; the new one went to the invitee
                token = getattr(result, "token", None)
                if token:
                    self.tokens[invitation.pk] = token
                else:
                    self.tokens.pop(invitation.pk, None)

    @rule(o=PICK, t=PICK)
    def support_ownership_recover(self, o, t):
        org, target = self._org(o), self._org_membership(t)
        if target is None:
            return
        reachable = support_services.reachable_owners(org).exists()
        self._step(
            self.engineer,
            lambda: support_services.support_ownership_recover(
                engineer=self.engineer, org=org, membership=target, **self.TICKET
            ),
            recovery=(org.pk, reachable),
            # While an owner is reachable this only asks them (one event, nothing changes yet).
            asks=reachable,
        )

    @rule(u=PICK, o=PICK)
    def support_two_factor_reset(self, u, o):
        user, org = self._user(u), self._org(o)
        self._step(
            self.engineer,
            lambda: support_services.support_two_factor_reset(
                engineer=self.engineer, user=user, organization=org, **self.TICKET
            ),
        )

    @rule(o=PICK, kind=st.sampled_from(["off", "always"]))
    def policy_set_support_access(self, o, kind):
        actor = self._user(o)
        org = self._org(o, actor)
        self._step(
            actor,
            lambda: governance_services.policy_set(
                actor=actor, org=org, kind="support_access", value={"mode": kind}
            ),
            one_event=True,
        )

    # --- enterprise identity: verified domains and SSO provisioning ---------------------------

    @rule(a=PICK, o=PICK, domain=st.sampled_from(["acme.test", "evil.test", "bad domain"]))
    def domain_add(self, a, o, domain):
        actor = self._user(a)
        org = self._org(o, actor)
        self._step(
            actor,
            lambda: sso_domains.domain_add(actor=actor, org=org, domain=domain),
            one_event=True,
        )

    @rule(a=PICK, d=PICK, published=st.booleans())
    def domain_verify(self, a, d, published):
        """The service after its DNS lookup, given the TXT values found (published or not)."""
        actor = self._user(a)
        claims = list(VerifiedDomain.objects.select_related("organization").order_by("pk"))
        if not claims:
            return
        claim = claims[d % len(claims)]
        found = [claim.txt_value] if published else ["v=spf1 -all"]
        self._step(
            actor,
            lambda: sso_domains._mark_verified(
                actor=actor, org=claim.organization, claim=claim, found=found
            ),
            one_event=True,
        )

    @rule(a=PICK, d=PICK)
    def domain_remove(self, a, d):
        actor = self._user(a)
        claims = list(VerifiedDomain.objects.select_related("organization").order_by("pk"))
        if not claims:
            return
        claim = claims[d % len(claims)]
        self._step(
            actor,
            lambda: sso_domains.domain_remove(actor=actor, org=claim.organization, claim=claim),
            one_event=True,
        )

    @rule(
        o=PICK,
        email=st.sampled_from(SSO_EMAILS),
        source=st.sampled_from(["saml", "oidc"]),
        plausible=st.booleans(),
        n=st.integers(0, 3),
    )
    def sso_provision(self, o, email, source, plausible, n):
        """An org's identity provider signs someone in: half the time a new or known address in
        a domain the org verified (deep sequences), half any org and address (most refused)."""
        org = self._org(o)
        claim = (
            VerifiedDomain.objects.filter(verified_at__isnull=False, organization__deleted_at=None)
            .select_related("organization")
            .order_by("pk")
            .first()
        )
        if plausible and claim is not None:
            org, email = claim.organization, f"jit{n}@{claim.domain}"
        if org is None:
            return
        self._step(
            IDP,
            lambda: sso_provision_member(org=org, email=email, full_name="Jit", source=source),
            sso=(org.pk, email),
        )

    # Setting up and removing an org's SAML IdP, and requiring SSO: who may (owners), and a
    # refusal changes nothing. (OIDC setup reads the provider's discovery document over the
    # network; its owner-only rule and refusals are tested in tests/sso/test_oidc.py.)
    @rule(a=PICK, o=PICK, enabled=st.booleans())
    def saml_configure(self, a, o, enabled):
        actor = self._user(a)
        org = self._org(o, actor)
        metadata = idp_metadata()
        self._step(
            actor,
            lambda: sso_saml.saml_configure(
                actor=actor, org=org, metadata_xml=metadata, enabled=enabled
            ),
            one_event=True,
        )

    @rule(a=PICK, o=PICK)
    def saml_remove(self, a, o):
        actor = self._user(a)
        org = self._org(o, actor)
        self._step(actor, lambda: sso_saml.saml_remove(actor=actor, org=org), one_event=True)

    @rule(a=PICK, o=PICK)
    def oidc_remove(self, a, o):
        actor = self._user(a)
        org = self._org(o, actor)
        self._step(actor, lambda: sso_oidc_setup.oidc_remove(actor=actor, org=org), one_event=True)

    @rule(a=PICK, o=PICK, enabled=st.booleans())
    def policy_set_require_sso(self, a, o, enabled):
        actor = self._user(a)
        org = self._org(o, actor)
        self._step(
            actor,
            lambda: governance_services.policy_set(
                actor=actor, org=org, kind="require_sso", value={"enabled": enabled}
            ),
            one_event=True,
        )

    # --- SCIM: owners set tokens and mappings; the org's identity provider provisions ---------

    SCIM_GROUPS = ["Eng", "Ops"]

    def _scim_token(self, o):
        org = self._org(o)
        token = ScimToken.objects.filter(organization=org, revoked_at__isnull=True).first()
        return org, token

    @rule(a=PICK, o=PICK)
    def scim_token_create(self, a, o):
        actor = self._user(a)
        org = self._org(o, actor)
        self._step(
            actor,
            lambda: scim_services.scim_token_create(actor=actor, org=org, name="IdP"),
            one_event=True,
        )

    @rule(
        a=PICK,
        o=PICK,
        w=PICK,
        group=st.sampled_from(SCIM_GROUPS),
        role=st.none() | ROLES,
    )
    def scim_group_mapping_set(self, a, o, w, group, role):
        actor = self._user(a)
        org, ws = self._org(o, actor), self._workspace(w, actor)
        if ws is None:
            return
        result = self._step(
            actor,
            lambda: scim_services.group_mapping_set(
                actor=actor, org=org, group_name=group, workspace=ws, role=role
            ),
        )
        if result is not None:
            held = OrgMembership.objects.filter(user=actor, organization=org).first()
            assert held is not None and held.role == Role.OWNER, (
                f"{actor.email} set a SCIM group mapping without being an owner"
            )

    @rule(o=PICK, email=st.sampled_from(EMAILS + NEW_EMAILS), active=st.booleans())
    def scim_user_provision(self, o, email, active):
        org, token = self._scim_token(o)
        if token is None:
            return
        attrs = scim_services.UserAttrs(user_name=email, active=active)
        result = self._step(
            self.engineer,
            lambda: scim_services.scim_user_create(token=token, attrs=attrs),
            scim=org.pk,
        )
        self._check_scim_domain(org, result)

    @staticmethod
    def _check_scim_domain(org, scim_user) -> None:
        """SCIM provisions only addresses in the org's verified domains (docs/rules.md §12)."""
        if scim_user is None or not scim_user.provisioned:
            return
        domain = scim_user.user.email.rsplit("@", 1)[1]
        assert sso_domains.verified_domain_of(domain) == org.pk, (
            f"SCIM provisioned {scim_user.user.email} outside {org.name}'s verified domains"
        )

    def _scim_user(self, org, i):
        rows = list(ScimUser.objects.filter(organization=org).order_by("pk"))
        return rows[i % len(rows)] if rows else None

    @rule(o=PICK, i=PICK, active=st.booleans())
    def scim_user_set_active(self, o, i, active):
        """PATCH active=true/false: re-provisioning or deprovisioning."""
        org, token = self._scim_token(o)
        scim_user = self._scim_user(org, i) if token else None
        if scim_user is None:
            return
        attrs = scim_services.UserAttrs(user_name=scim_user.user_name, active=active)
        result = self._step(
            self.engineer,
            lambda: scim_services.scim_user_replace(token=token, scim_user=scim_user, attrs=attrs),
            scim=org.pk,
        )
        self._check_scim_domain(org, result)

    @rule(o=PICK, i=PICK)
    def scim_user_delete(self, o, i):
        org, token = self._scim_token(o)
        scim_user = self._scim_user(org, i) if token else None
        if scim_user is None:
            return
        self._step(
            self.engineer,
            lambda: scim_services.scim_user_delete(token=token, scim_user=scim_user),
            scim=org.pk,
        )

    @rule(o=PICK, group=st.sampled_from(SCIM_GROUPS), members=st.sets(PICK, max_size=3))
    def scim_group_set_members(self, o, group, members):
        """POST or PATCH a group: its members' grants follow the owners' mappings."""
        org, token = self._scim_token(o)
        if token is None:
            return
        users = list(ScimUser.objects.filter(organization=org).order_by("pk"))
        ids = sorted({users[m % len(users)].public_id for m in members}) if users else []
        existing = ScimGroup.objects.filter(organization=org, display_name=group).first()
        if existing is None:
            call = lambda: scim_services.scim_group_create(  # noqa: E731
                token=token, display_name=group, member_ids=ids
            )
        else:
            call = lambda: scim_services.scim_group_replace(  # noqa: E731
                token=token, group=existing, display_name=group, external_id="", member_ids=ids
            )
        self._step(self.engineer, call, scim=org.pk)

    # --- invariants after every step --------------------------------------------------------

    @invariant()
    def owners_everywhere(self):
        for org in Organization.objects.alive():
            assert OrgMembership.objects.filter(
                organization=org, role=Role.OWNER, suspended_at__isnull=True
            ).exists(), f"organization {org.name} has no owner who can act (not suspended)"
        for ws in Workspace.objects.all():
            assert WorkspaceMembership.objects.filter(workspace=ws, role=Role.OWNER).exists(), (
                f"workspace {ws.name} has no owner"
            )

    @invariant()
    def directory_columns_match_the_rows(self):
        """The kept workspace count and sort name (members migration 0007) equal the real ones."""
        real = (
            WorkspaceMembership.objects.filter(
                user=OuterRef("user"), workspace__organization=OuterRef("organization")
            )
            .order_by()
            .values("user")
            .annotate(c=Count("pk"))
            .values("c")
        )
        for m in OrgMembership.objects.select_related("user").annotate(
            real=Coalesce(Subquery(real, output_field=IntegerField()), Value(0))
        ):
            assert m.workspace_count == m.real, (
                f"{m}: workspace_count {m.workspace_count}, real {m.real}"
            )
            assert m.sort_name == (m.user.full_name or m.user.email).lower(), m

    @invariant()
    def required_sso_always_has_a_way_in(self):
        """Required SSO never leaves an org's people without an identity provider or a
        verified domain: removing or disabling the IdP is refused first."""
        for org in Organization.objects.alive():
            if requires_sso(org.pk):
                assert sso_protocol(org) is not None, f"{org.slug} requires SSO with no IdP on"

    @invariant()
    def workspaces_only_in_live_orgs(self):
        assert not Workspace.objects.filter(organization__deleted_at__isnull=False).exists()
        assert not OrgMembership.objects.filter(organization__deleted_at__isnull=False).exists()


EXAMPLES = int(os.environ.get("TRUST_EXAMPLES", "150"))
STEPS = int(os.environ.get("TRUST_STEPS", "25"))


def test_no_sequence_of_actions_breaks_the_invariants(db):
    run_state_machine_as_test(
        PermissionModel,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            print_blob=True,
            suppress_health_check=list(HealthCheck),
        ),
    )
