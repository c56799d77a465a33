"""docs/rules.md §4 through the invitation services: invite, resend, revoke, accept, and why links fail."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from audit.models import AuditEvent
from config.errors import (
    Conflict,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    RateLimited,
    ValidationFailed,
)
from config.roles import Role
from members.invitations import (
    InvitationExpired,
    InvitationInvalid,
    InvitationRevoked,
    InvitationUsed,
    InvitationWrongEmail,
    invitation_accept,
    invitation_by_token,
    invitation_resend,
    invitation_revoke,
    member_invite,
    parse_emails,
)
from members.models import Invitation, OrgMembership
from members.tokens import hash_token
from orgs.models import GovernancePolicy
from orgs.services import workspace_unlink
from tests.factories import UserFactory, add_to_workspace
from workspaces.models import WorkspaceMembership


def actions(org):
    return list(
        AuditEvent.objects.filter(organization=org).order_by("seq").values_list("action", flat=True)
    )


# --- invite -------------------------------------------------------------------------------


def test_invite_stores_hash_only_and_normalises_email(org_setup, invite):
    s = org_setup
    [inv] = invite(s.admin, s.org, "  Dana@Example.TEST ", grants={s.ws_a.pk: Role.ADMIN})
    inv.refresh_from_db()
    assert inv.email == "dana@example.test"
    assert inv.public_id.startswith("inv_")
    assert len(inv.token) >= 43  # 32 random bytes, url-safe base64
    assert inv.token_hash == hash_token(inv.token) and inv.token not in inv.token_hash
    assert inv.expires_at - inv.created_at == timedelta(days=7)
    assert [(g.workspace_id, g.role) for g in inv.grants.all()] == [(s.ws_a.pk, Role.ADMIN)]
    event = AuditEvent.objects.get(action="member.invited")
    assert event.target_label == "dana@example.test"
    assert event.details["role"] == "member"
    assert event.details["workspace_access"][0]["role"] == "admin"


def test_bulk_invite_dedupes_and_creates_one_each(org_setup, invite):
    s = org_setup
    invs = invite(s.owner, s.org, *parse_emails("a@x.test, A@x.test\nb@x.test  c@x.test;"))
    assert sorted(i.email for i in invs) == ["a@x.test", "b@x.test", "c@x.test"]
    assert len(mail.outbox) == 3
    assert actions(s.org).count("member.invited") == 3


def test_already_member_is_conflict(org_setup, invite):
    s = org_setup
    with pytest.raises(Conflict) as exc:
        invite(s.admin, s.org, "CAROL@acme.test")
    assert exc.value.code == "already_member"
    assert "already a member" in exc.value.message
    assert not Invitation.objects.exists()


def test_pending_invite_is_conflict_pointing_to_resend(org_setup, invite):
    s = org_setup
    invite(s.admin, s.org, "dana@example.test")
    with pytest.raises(Conflict) as exc:
        invite(s.admin, s.org, "Dana@example.test")
    assert exc.value.code == "invite_pending"
    assert "Resend" in exc.value.message
    assert Invitation.objects.count() == 1


def test_bulk_invite_is_all_or_nothing_with_errors_per_email(org_setup, invite):
    s = org_setup
    invite(s.admin, s.org, "pending@example.test")
    with pytest.raises(DomainErrorTypes) as exc:
        invite(
            s.admin, s.org, "new@example.test", "carol@acme.test", "pending@example.test", "nope"
        )
    per_email = exc.value.per_email
    assert set(per_email) == {"carol@acme.test", "pending@example.test", "nope"}
    assert "not a valid email" in per_email["nope"]
    assert not Invitation.objects.filter(email="new@example.test").exists()


DomainErrorTypes = (Conflict, ValidationFailed)


def test_expired_pending_invite_does_not_block_a_new_one(org_setup, invite):
    s = org_setup
    [old] = invite(s.admin, s.org, "dana@example.test")
    Invitation.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    [new] = invite(s.admin, s.org, "dana@example.test")
    old.refresh_from_db()
    assert old.status == Invitation.Status.EXPIRED
    assert new.status == Invitation.Status.PENDING


def test_admin_cannot_invite_owner(org_setup, invite):
    s = org_setup
    with pytest.raises(PermissionDenied) as exc:
        invite(s.admin, s.org, "dana@example.test", role=Role.OWNER)
    assert "owner" in exc.value.message
    with pytest.raises(PermissionDenied):
        invite(s.admin, s.org, "dana@example.test", grants={s.ws_a.pk: Role.OWNER})
    [inv] = invite(s.owner, s.org, "dana@example.test", role=Role.OWNER)
    assert inv.org_role == Role.OWNER


def test_member_cannot_invite_and_stranger_gets_404(org_setup, invite):
    s = org_setup
    with pytest.raises(PermissionDenied) as exc:
        invite(s.member, s.org, "dana@example.test")
    assert "admin role" in exc.value.message
    with pytest.raises(NotFound):
        invite(s.stranger, s.org, "dana@example.test")
    assert not Invitation.objects.exists()


def test_grant_to_unlinked_workspace_is_422(org_setup, invite, owner):
    from workspaces.services import workspace_create

    s = org_setup
    outside = workspace_create(actor=owner, name="Outside")
    with pytest.raises(ValidationFailed) as exc:
        invite(s.owner, s.org, "dana@example.test", grants={outside.pk: Role.MEMBER})
    assert exc.value.status == 422
    assert "workspace_access" in exc.value.fields
    assert not Invitation.objects.exists()


def test_governance_email_domain(org_setup, invite):
    s = org_setup
    GovernancePolicy.objects.create(
        organization=s.org, kind="allowed_email_domains", value={"domains": ["acme.test"]}
    )
    with pytest.raises(ValidationFailed) as exc:
        invite(s.admin, s.org, "dana@example.test")
    assert exc.value.code == "email_domain_not_allowed"
    assert invite(s.admin, s.org, "dana@acme.test")


def test_plan_member_limit_counts_pending(org_setup, invite):
    s = org_setup  # 3 members; the Free plan allows 25
    invite(s.admin, s.org, *[f"p{i}@example.test" for i in range(22)])
    with pytest.raises(LimitExceeded) as exc:
        invite(s.admin, s.org, "one-too-many@example.test")
    assert "25 members" in exc.value.message


# --- rate limits, counted from the Invitation table ----------------------------------------


def _fill(org, inviter, n, *, at):
    Invitation.objects.bulk_create(
        [
            Invitation(
                organization=org,
                email=f"filler{i}@example.test",
                invited_by=inviter,
                token_hash=hash_token(f"{org.pk}-{inviter.pk}-{i}-{at.isoformat()}"),
                created_at=at,
                expires_at=at + timedelta(days=7),
                status=Invitation.Status.REVOKED,
            )
            for i in range(n)
        ]
    )


def test_inviter_hourly_limit_exactly_at_the_boundary(org_setup, invite, settings):
    s = org_setup
    settings.INVITES_PER_INVITER_PER_HOUR = 50
    _fill(s.org, s.admin, 49, at=timezone.now() - timedelta(minutes=30))
    invite(s.admin, s.org, "fiftieth@example.test")  # the 50th in the hour is allowed
    with pytest.raises(RateLimited) as exc:
        invite(s.admin, s.org, "fifty-first@example.test")
    err = exc.value
    assert err.status == 429 and err.code == "invite_rate_limited"
    assert "50 invitations per hour" in err.message and "UTC" in err.message
    # the oldest counted invitation leaves the window in ~30 minutes
    assert 29 * 60 <= err.retry_after <= 30 * 60 + 1
    # another inviter of the same org is not held back by this one's hourly limit
    invite(s.owner, s.org, "by-owner@example.test")


def test_hourly_window_forgets_older_invitations(org_setup, invite):
    s = org_setup
    _fill(s.org, s.admin, 50, at=timezone.now() - timedelta(hours=1, seconds=5))
    assert invite(s.admin, s.org, "fresh@example.test")


def test_org_daily_limit_exactly_at_the_boundary(org_setup, invite):
    s = org_setup
    _fill(s.org, s.owner, 99, at=timezone.now() - timedelta(hours=3))
    invite(s.admin, s.org, "hundredth@example.test")
    with pytest.raises(RateLimited) as exc:
        invite(s.admin, s.org, "hundred-and-first@example.test")
    assert "100 invitations per 24 hours" in exc.value.message
    assert 21 * 3600 - 5 <= exc.value.retry_after <= 21 * 3600 + 1


def test_bulk_invite_over_the_limit_invites_nobody(org_setup, invite):
    s = org_setup
    _fill(s.org, s.owner, 98, at=timezone.now() - timedelta(hours=1))
    with pytest.raises(RateLimited) as exc:
        invite(s.admin, s.org, "a@example.test", "b@example.test", "c@example.test")
    assert "2 more can go now" in exc.value.message
    assert not Invitation.objects.filter(status="pending").exists()


# --- resend / revoke ----------------------------------------------------------------------


def test_resend_renews_expired_invitation_and_voids_old_link(
    org_setup, invite, django_capture_on_commit_callbacks
):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test")
    old_token = inv.token
    Invitation.objects.filter(pk=inv.pk).update(expires_at=timezone.now() - timedelta(days=1))
    with pytest.raises(InvitationExpired):
        invitation_by_token(old_token)
    with django_capture_on_commit_callbacks(execute=True):
        inv, token = invitation_resend(actor=s.admin, invitation=inv)
    assert token != old_token
    assert inv.expires_at > timezone.now() + timedelta(days=6, hours=23)
    assert invitation_by_token(token).pk == inv.pk
    with pytest.raises(InvitationInvalid):
        invitation_by_token(old_token)
    assert len(mail.outbox) == 2 and token in mail.outbox[1].body
    assert actions(s.org)[-1] == "member.invite_resent"


def test_resending_an_expired_invitation_checks_the_seat_and_domain_again(org_setup, invite):
    s = org_setup  # 3 members; the Free plan allows 25
    [old] = invite(s.admin, s.org, "dana@example.test")
    Invitation.objects.filter(pk=old.pk).update(status=Invitation.Status.EXPIRED)
    invite(s.admin, s.org, *[f"p{i}@example.test" for i in range(22)])  # 25 with pending
    with pytest.raises(LimitExceeded):
        invitation_resend(actor=s.admin, invitation=old)
    assert Invitation.objects.get(pk=old.pk).status == Invitation.Status.EXPIRED
    Invitation.objects.filter(email="p0@example.test").update(status=Invitation.Status.REVOKED)
    GovernancePolicy.objects.create(
        organization=s.org, kind="allowed_email_domains", value={"domains": ["acme.test"]}
    )
    with pytest.raises(ValidationFailed) as exc:
        invitation_resend(actor=s.admin, invitation=old)
    assert exc.value.code == "email_domain_not_allowed"
    assert Invitation.objects.get(pk=old.pk).status == Invitation.Status.EXPIRED


def test_revoke_voids_link_and_is_audited(org_setup, invite):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test")
    invitation_revoke(actor=s.admin, invitation=inv)
    with pytest.raises(InvitationRevoked) as exc:
        invitation_by_token(inv.token)
    assert "withdrawn" in exc.value.message
    assert actions(s.org)[-1] == "member.invite_revoked"
    with pytest.raises(Conflict):
        invitation_resend(actor=s.admin, invitation=inv)


def test_member_cannot_resend_or_revoke(org_setup, invite):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test")
    with pytest.raises(PermissionDenied):
        invitation_resend(actor=s.member, invitation=inv)
    with pytest.raises(PermissionDenied):
        invitation_revoke(actor=s.member, invitation=inv)
    with pytest.raises(NotFound):
        invitation_revoke(actor=s.stranger, invitation=inv)


# --- accept -------------------------------------------------------------------------------


def test_accept_creates_membership_and_org_grants_in_one_go(org_setup, invite):
    s = org_setup
    [inv] = invite(
        s.admin, s.org, "dana@example.test", role=Role.ADMIN, grants={s.ws_a.pk: Role.MEMBER}
    )
    dana = UserFactory(email="dana@example.test")
    result = invitation_accept(user=dana, token=inv.token)
    assert result.membership.role == Role.ADMIN
    m = WorkspaceMembership.objects.get(user=dana)
    assert (m.workspace_id, m.role, m.source, m.granted_by_id) == (
        s.ws_a.pk,
        Role.MEMBER,
        "org",
        s.admin.pk,
    )
    assert result.skipped == []
    assert actions(s.org)[-2:] == ["member.joined", "member.access_granted"]
    inv.refresh_from_db()
    assert inv.status == "accepted" and inv.accepted_by == dana


def test_accept_keeps_direct_membership_direct_and_never_lowers(org_setup, invite):
    s = org_setup
    dana = UserFactory(email="dana@example.test")
    add_to_workspace(dana, s.ws_a, Role.MEMBER, source="direct")
    add_to_workspace(dana, s.ws_b, Role.ADMIN, source="direct")
    [inv] = invite(
        s.owner, s.org, "dana@example.test", grants={s.ws_a.pk: Role.ADMIN, s.ws_b.pk: Role.MEMBER}
    )
    invitation_accept(user=dana, token=inv.token)
    got = {
        m.workspace_id: (m.role, m.source) for m in WorkspaceMembership.objects.filter(user=dana)
    }
    assert got == {s.ws_a.pk: (Role.ADMIN, "direct"), s.ws_b.pk: (Role.ADMIN, "direct")}
    assert "member.access_changed" in actions(s.org)


def test_accept_skips_workspaces_unlinked_since(org_setup, invite):
    s = org_setup
    [inv] = invite(
        s.owner, s.org, "dana@example.test", grants={s.ws_a.pk: Role.MEMBER, s.ws_b.pk: Role.MEMBER}
    )
    workspace_unlink(actor=s.owner, org=s.org, workspace=s.ws_b)
    dana = UserFactory(email="dana@example.test")
    result = invitation_accept(user=dana, token=inv.token)
    assert result.skipped == ["Staging"]
    assert list(
        WorkspaceMembership.objects.filter(user=dana).values_list("workspace", flat=True)
    ) == [s.ws_a.pk]


def test_accept_applies_default_workspace_grant_policy(org_setup, invite):
    s = org_setup
    GovernancePolicy.objects.create(
        organization=s.org,
        kind="default_workspace_grant",
        value={"workspaces": [s.ws_b.public_id], "role": int(Role.MEMBER)},
    )
    [inv] = invite(s.owner, s.org, "dana@example.test")
    dana = UserFactory(email="dana@example.test")
    result = invitation_accept(user=dana, token=inv.token)
    assert [m.workspace_id for m in result.granted] == [s.ws_b.pk]
    event = AuditEvent.objects.filter(action="member.access_granted").latest("seq")
    assert event.actor_type == "system" and event.details["policy"] == "default_workspace_grant"


def test_accept_wrong_email_is_refused(org_setup, invite):
    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test")
    with pytest.raises(InvitationWrongEmail) as exc:
        invitation_accept(user=s.stranger, token=inv.token)
    assert exc.value.status == 403
    assert "dana@example.test" in exc.value.message and "sam@elsewhere.test" in exc.value.message
    assert not OrgMembership.objects.filter(user=s.stranger).exists()
    assert invitation_by_token(inv.token).status == "pending"


def test_token_failures_each_say_which(org_setup, invite):
    s = org_setup
    dana = UserFactory(email="dana@example.test")
    [inv] = invite(s.admin, s.org, "dana@example.test")
    invitation_accept(user=dana, token=inv.token)
    with pytest.raises(InvitationUsed) as used:
        invitation_accept(user=dana, token=inv.token)
    assert "already been accepted" in used.value.message
    with pytest.raises(InvitationInvalid) as invalid:
        invitation_by_token("not-a-real-token")
    assert "not valid" in invalid.value.message
    [inv2] = invite(s.admin, s.org, "erin@example.test")
    Invitation.objects.filter(pk=inv2.pk).update(expires_at=timezone.now())
    erin = UserFactory(email="erin@example.test")
    with pytest.raises(InvitationExpired) as expired:
        invitation_accept(user=erin, token=inv2.token)
    assert "expired" in expired.value.message and "resend" in expired.value.message
    assert not OrgMembership.objects.filter(user=erin).exists()


def test_invite_with_string_roles_is_rejected_cleanly(org_setup):
    s = org_setup
    with pytest.raises(ValidationFailed):
        member_invite(
            actor=s.owner, org=s.org, emails=["x@example.test"], org_role="boss", grants={}
        )


def test_accepting_as_an_existing_member_is_audited_and_keeps_the_role(org_setup, invite):
    from tests.factories import add_to_org

    s = org_setup
    [inv] = invite(s.admin, s.org, "dana@example.test")
    dana = UserFactory(email="dana@example.test")
    add_to_org(dana, s.org, Role.ADMIN)  # joined some other way in the meantime
    result = invitation_accept(user=dana, token=inv.token)
    assert result.already_member
    assert OrgMembership.objects.get(organization=s.org, user=dana).role == Role.ADMIN
    event = AuditEvent.objects.filter(action="member.joined", actor_user=dana).get()
    assert event.details["already_member"] is True and event.details["role"] == "admin"
    assert Invitation.objects.get(pk=inv.pk).status == Invitation.Status.ACCEPTED


def test_checking_a_bulk_invite_reads_the_domain_policy_once(org_setup):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from members.invitations import invite_problems

    s = org_setup
    GovernancePolicy.objects.create(
        organization=s.org, kind="allowed_email_domains", value={"domains": ["acme.test"]}
    )
    for n in (2, 40):
        emails = [f"p{i}@acme.test" for i in range(n - 1)] + ["x@elsewhere.test"]
        with CaptureQueriesContext(connection) as ctx:
            problems = invite_problems(s.org, emails)
        assert list(problems) == ["x@elsewhere.test"]
        policy_reads = [q for q in ctx.captured_queries if "governancepolicy" in q["sql"]]
        assert len(policy_reads) == 1, n
