"""Access reviews: started by an owner, decided in bulk by the reviewers through the existing
services, reminded and completed by the beat task, reported as a page, CSV and JSON."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from config.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from config.roles import Role
from reviews import services, tasks
from reviews.models import AccessReview, AccessReviewer
from tests.factories import UserFactory, add_to_org, add_to_workspace
from workspaces.models import WorkspaceMembership


def due(days=7):
    return timezone.now() + timedelta(days=days)


def start(s, **kw):
    kw.setdefault("name", "Q4 review")
    kw.setdefault("due_at", due())
    return services.review_start(actor=s.owner, org=s.org, **kw)


def item(review, email, ws):
    return review.items.get(user_label=email, workspace_label=ws.name)


def has(user, ws):
    return (
        WorkspaceMembership.objects.filter(user=user, workspace=ws)
        .values_list("role", flat=True)
        .first()
    )


def test_start_snapshots_grants_with_history_and_default_reviewers(org_setup):
    s = org_setup
    review = start(s)
    assert (
        review.items.count()
        == WorkspaceMembership.objects.filter(workspace__organization=s.org).count()
    )
    bob = item(review, "bob@acme.test", s.ws_a)
    assert (bob.role, bob.source) == (Role.ADMIN, "org")
    # Default reviewers: each workspace's owners, for that workspace.
    assert set(AccessReviewer.objects.filter(review=review).values_list("user", "workspace")) == {
        (s.owner.pk, s.ws_a.pk),
        (s.owner.pk, s.ws_b.pk),
    }
    assert AuditEvent.objects.filter(action="access_review.started").count() == 1


def test_only_owners_start_with_valid_input(org_setup):
    s = org_setup
    with pytest.raises(PermissionDenied):
        services.review_start(actor=s.admin, org=s.org, name="x", due_at=due())
    with pytest.raises(NotFound):
        services.review_start(actor=s.stranger, org=s.org, name="x", due_at=due())
    for bad in (
        {"name": ""},
        {"due_at": timezone.now() - timedelta(days=1)},
        {"unreviewed": "shrug"},
        {"reviewer_ids": [s.member.pk]},  # reviewers are owners/admins
        {"workspace_ids": [999999]},
    ):
        with pytest.raises(ValidationFailed):
            start(s, **bad)
    assert not AccessReview.objects.exists()


def test_decisions_apply_through_the_services_and_only_by_reviewers(org_setup):
    s = org_setup
    review = start(s, reviewer_ids=[s.admin.pk])
    carol = item(review, "carol@acme.test", s.ws_b)
    with pytest.raises(PermissionDenied):  # the owner is not a named reviewer here
        services.review_decide(
            actor=s.owner, org=s.org, review=review, item_id=carol.public_id, decision="keep"
        )
    with pytest.raises(ValidationFailed):
        services.review_decide(
            actor=s.admin, org=s.org, review=review, item_id=carol.public_id, decision="change"
        )
    services.review_decide(
        actor=s.admin,
        org=s.org,
        review=review,
        item_id=carol.public_id,
        decision="change",
        new_role=Role.ADMIN,
    )
    assert has(s.member, s.ws_b) == Role.ADMIN
    assert AuditEvent.objects.filter(action="member.access_changed", workspace=s.ws_b).exists()
    with pytest.raises(Conflict):
        services.review_decide(
            actor=s.admin, org=s.org, review=review, item_id=carol.public_id, decision="revoke"
        )
    bob = item(review, "bob@acme.test", s.ws_a)
    services.review_decide(
        actor=s.admin, org=s.org, review=review, item_id=bob.public_id, decision="keep"
    )
    assert AuditEvent.objects.filter(action="access_review.grant_kept").count() == 1
    olivia = item(review, "olivia@acme.test", s.ws_a)
    # An admin cannot take away an owner's access: the service refuses, nothing is decided.
    with pytest.raises(PermissionDenied):
        services.review_decide(
            actor=s.admin, org=s.org, review=review, item_id=olivia.public_id, decision="revoke"
        )
    olivia.refresh_from_db()
    assert olivia.decision == "" and has(s.owner, s.ws_a) == Role.OWNER


def test_a_workspace_owner_who_is_an_org_member_reviews_their_workspace(org_setup):
    s = org_setup
    wendy = UserFactory(email="wendy@acme.test")
    add_to_org(wendy, s.org, Role.MEMBER)
    add_to_workspace(wendy, s.ws_b, Role.OWNER, source="org")
    review = start(s, workspace_ids=[s.ws_b.pk])
    assert set(review.items.values_list("workspace_label", flat=True)) == {"Staging"}
    carol = item(review, "carol@acme.test", s.ws_b)
    services.review_decide(
        actor=wendy, org=s.org, review=review, item_id=carol.public_id, decision="revoke"
    )
    assert has(s.member, s.ws_b) is None


def test_due_date_revokes_unreviewed_and_reminders_go_once(org_setup):
    s = org_setup
    review = start(s, due_at=due(1), unreviewed="revoke", reviewer_ids=[s.owner.pk])
    mail.outbox.clear()
    assert tasks.send_reminders() == 1 and tasks.send_reminders() == 0
    assert mail.outbox[0].to == ["olivia@acme.test"] and "Q4 review" in mail.outbox[0].subject
    assert tasks.complete_due() == 0  # not due yet
    later = timezone.now() + timedelta(days=2)
    assert tasks.complete_due(later) == 1 and tasks.complete_due(later) == 0
    review.refresh_from_db()
    assert review.status == "completed"
    assert has(s.member, s.ws_b) is None and has(s.admin, s.ws_a) is None
    assert has(s.owner, s.ws_a) == Role.OWNER  # the last owner stays: refused, and reported
    assert "not revoked" in item(review, "olivia@acme.test", s.ws_a).outcome
    assert AuditEvent.objects.filter(action="access_review.completed").count() == 1
    with pytest.raises(Conflict):
        services.review_decide(
            actor=s.owner,
            org=s.org,
            review=review,
            item_id=item(review, "olivia@acme.test", s.ws_a).public_id,
            decision="keep",
        )


def test_pages_bulk_decide_and_reports(org_setup, login):
    s = org_setup
    c = login(s.owner)
    new = reverse("reviews:new", args=[s.org.slug])
    assert (
        c.post(new, {"name": "", "due_date": "2000-01-01", "unreviewed": "keep"}).status_code == 422
    )
    response = c.post(
        new, {"name": "=cmd Q4", "due_date": due().date().isoformat(), "unreviewed": "keep"}
    )
    assert response.status_code == 302
    review = AccessReview.objects.get()
    detail = reverse("reviews:detail", args=[s.org.slug, review.public_id])
    page = c.get(detail)
    assert page.status_code == 200 and b'data-testid="review-items"' in page.content
    ids = [i.public_id for i in review.items.exclude(user_label="olivia@acme.test")]
    decide = reverse("reviews:decide", args=[s.org.slug, review.public_id])
    assert c.post(decide, {"items": ids, "decision": "change", "role": ""}).status_code == 422
    assert c.post(decide, {"items": ids, "decision": "keep"}).status_code == 302
    assert review.items.filter(decision="keep").count() == len(ids)
    assert (
        c.post(reverse("reviews:complete", args=[s.org.slug, review.public_id])).status_code == 302
    )
    rows = list(
        csv.reader(
            io.StringIO(
                c.get(
                    reverse("reviews:report", args=[s.org.slug, review.public_id, "csv"])
                ).content.decode()
            )
        )
    )
    assert rows[0][:3] == ["workspace", "person", "role"] and len(rows) == review.items.count() + 1
    body = json.loads(
        c.get(reverse("reviews:report", args=[s.org.slug, review.public_id, "json"])).content
    )
    assert body["name"] == "=cmd Q4" and body["status"] == "completed"
    assert {i["decision"] for i in body["items"]} == {"keep"}
    assert (
        c.get(reverse("reviews:report", args=[s.org.slug, review.public_id, "xml"])).status_code
        == 404
    )
    # Other roles: an admin reads the report, a member who is no reviewer gets 404, a
    # stranger 404, and only owners start reviews.
    assert login(s.admin).get(detail).status_code == 200
    assert login(s.admin).get(new).status_code == 403
    assert login(s.member).get(detail).status_code == 404
    assert login(s.member).get(reverse("reviews:list", args=[s.org.slug])).status_code == 200
    assert login(s.stranger).get(detail).status_code == 404


def test_a_grant_gone_since_the_start_is_recorded_as_gone(org_setup):
    s = org_setup
    review = start(s)
    WorkspaceMembership.objects.filter(user=s.member, workspace=s.ws_b).delete()
    carol = item(review, "carol@acme.test", s.ws_b)
    done = services.review_decide(
        actor=s.owner, org=s.org, review=review, item_id=carol.public_id, decision="revoke"
    )
    assert done.outcome == "access was already gone"
    assert AuditEvent.objects.filter(action="access_review.grant_gone").count() == 1


def test_another_orgs_review_is_a_404(org_setup, login):
    s = org_setup
    review = start(s)
    from orgs.services import org_create

    other = org_create(actor=s.stranger, name="Elsewhere")
    c = login(s.stranger)
    for name, args in (
        ("reviews:detail", [other.slug, review.public_id]),
        ("reviews:report", [other.slug, review.public_id, "csv"]),
    ):
        assert c.get(reverse(name, args=args)).status_code == 404
    item_id = review.items.first().public_id
    response = c.post(
        reverse("reviews:decide", args=[other.slug, review.public_id]),
        {"items": [item_id], "decision": "revoke"},
    )
    assert response.status_code == 404
    with pytest.raises(NotFound):
        services.review_decide(
            actor=s.stranger, org=other, review=review, item_id=item_id, decision="revoke"
        )
    assert not review.items.exclude(decision="").exists()
