"""Organization › Access reviews: start one, decide your grants in bulk, read the report."""

from __future__ import annotations

import io
import json
from datetime import datetime, time

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from config.csvsafe import csv_writer
from config.errors import DomainError, NotFound, ValidationFailed
from config.roles import Role
from orgs.decorators import org_view
from orgs.permissions import OrgCapability, org_can
from reviews import selectors, services
from reviews.models import AccessReview, AccessReviewItem
from workspaces.models import Workspace


def _sees_all(request) -> bool:
    """Owners and admins read every review and report (auditors' material); reviewers theirs."""
    return org_can(request.org_role, OrgCapability.VIEW_USAGE_AUDIT)


@org_view(OrgCapability.REVIEW_ACCESS)
def review_list(request):
    return render(
        request,
        "reviews/list.html",
        {
            "org": request.org,
            "reviews": selectors.reviews_of(request.org, request.user, sees_all=_sees_all(request)),
            "can_start": org_can(request.org_role, OrgCapability.START_ACCESS_REVIEWS),
        },
    )


class StartForm(forms.Form):
    name = forms.CharField(max_length=100, initial="Quarterly access review")
    due_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    unreviewed = forms.ChoiceField(
        label="At the due date, grants nobody reviewed are",
        choices=[("keep", "kept"), ("revoke", "revoked")],
        initial="keep",
    )
    workspaces = forms.ModelMultipleChoiceField(
        queryset=Workspace.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: the whole organization.",
    )
    reviewers = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: each workspace's owners review its grants.",
    )

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workspaces"].queryset = Workspace.objects.filter(organization=org).order_by(
            "name"
        )
        self.fields["reviewers"].choices = [
            (str(m.user_id), f"{m.user.display_name} ({m.role_name})")
            for m in selectors.eligible_reviewers(org)
        ]


@org_view(OrgCapability.START_ACCESS_REVIEWS)
def review_new(request):
    form = StartForm(request.POST or None, org=request.org)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            due = timezone.make_aware(datetime.combine(form.cleaned_data["due_date"], time(17)))
            try:
                review = services.review_start(
                    actor=request.user,
                    org=request.org,
                    name=form.cleaned_data["name"],
                    due_at=due,
                    unreviewed=form.cleaned_data["unreviewed"],
                    workspace_ids=[w.pk for w in form.cleaned_data["workspaces"]],
                    reviewer_ids=[int(pk) for pk in form.cleaned_data["reviewers"]],
                )
            except DomainError as exc:
                status = exc.status
                for field, message in exc.fields.items():
                    form.add_error(field if field in form.fields else None, message)
                if not exc.fields:
                    form.add_error(None, exc.message)
            else:
                messages.success(request, f"The access review {review.name} has started.")
                return redirect(
                    "reviews:detail", org_slug=request.org.slug, review_id=review.public_id
                )
        else:
            status = 422
    return render(request, "reviews/new.html", {"org": request.org, "form": form}, status=status)


def _review(request, review_id) -> AccessReview:
    return selectors.review_for_viewer(
        request.org, review_id, request.user, sees_all=_sees_all(request)
    )


@org_view(OrgCapability.REVIEW_ACCESS)
def review_detail(request, review_id):
    return _detail(request, _review(request, review_id))


def _detail(request, review, *, results=None, status=200):
    mine = selectors.items_for_reviewer(review, request.user)
    context = {
        "org": request.org,
        "review": review,
        "mine": mine if review.status == AccessReview.Status.OPEN else [],
        "undecided_mine": mine.filter(decision="").count(),
        "report": selectors.report_rows(review) if _sees_all(request) else mine,
        "reviewers": selectors.review_reviewers(review),
        "total": review.items.count(),
        "decided": review.items.exclude(decision="").count(),
        "can_finish": review.status == AccessReview.Status.OPEN
        and org_can(request.org_role, OrgCapability.START_ACCESS_REVIEWS),
        "roles": list(Role),
        "results": results or [],
    }
    return render(request, "reviews/detail.html", context, status=status)


@require_POST
@org_view(OrgCapability.REVIEW_ACCESS)
def review_decide_view(request, review_id):
    """Bulk: one decision (and role) for every ticked grant; each applied on its own."""
    review = _review(request, review_id)
    item_ids = request.POST.getlist("items")[:500]
    decision = request.POST.get("decision", "")
    raw_role = request.POST.get("role") or ""
    try:
        if not item_ids:
            raise ValidationFailed("Tick at least one grant.", fields={"items": "Tick a grant."})
        if decision not in AccessReviewItem.Decision.values:
            raise ValidationFailed("Choose keep, change role or revoke.", fields={"decision": "?"})
        role = None
        if decision == AccessReviewItem.Decision.CHANGE:
            if not raw_role.isdigit() or int(raw_role) not in Role.values:
                raise ValidationFailed("Choose the new role.", fields={"role": "Choose a role."})
            role = Role(int(raw_role))
    except DomainError as exc:
        messages.error(request, exc.message)
        return _detail(request, review, status=exc.status)
    results, failed = [], 0
    for item_id in item_ids:
        try:
            item = services.review_decide(
                actor=request.user,
                org=request.org,
                review=review,
                item_id=item_id,
                decision=decision,
                new_role=role,
            )
            results.append((item.user_label, item.workspace_label, item.outcome, ""))
        except DomainError as exc:
            failed += 1
            results.append((item_id, "", "", exc.message))
    done = len(item_ids) - failed
    if failed:
        messages.error(request, f"{done} decided, {failed} refused — see below.")
        return _detail(request, review, results=results, status=409)
    messages.success(request, f"{done} grant{'s' if done != 1 else ''} decided.")
    return redirect("reviews:detail", org_slug=request.org.slug, review_id=review.public_id)


@require_POST
@org_view(OrgCapability.START_ACCESS_REVIEWS)
def review_complete_view(request, review_id):
    review = _review(request, review_id)
    try:
        services.review_complete(org=request.org, review=review, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{review.name} is finished; its report is below.")
    return redirect("reviews:detail", org_slug=request.org.slug, review_id=review.public_id)


@org_view(OrgCapability.REVIEW_ACCESS)
def review_report(request, review_id, fmt):
    """The report an auditor takes away: every grant, its decision, who, when, what changed."""
    if fmt not in ("csv", "json"):
        raise NotFound("No such report format.")
    review = _review(request, review_id)
    rows = (
        selectors.report_rows(review)
        if _sees_all(request)
        else selectors.items_for_reviewer(review, request.user)
    )
    data = [selectors.report_row(item) for item in rows]
    filename = f"access-review-{review.public_id}.{fmt}"
    if fmt == "json":
        body = {
            "id": review.public_id,
            "name": review.name,
            "organization": request.org.public_id,
            "status": review.status,
            "started_by": review.started_by.email if review.started_by else None,
            "started_at": review.started_at.isoformat(),
            "due_at": review.due_at.isoformat(),
            "completed_at": review.completed_at.isoformat() if review.completed_at else None,
            "unreviewed": review.unreviewed,
            "reviewers": selectors.review_reviewers(review),
            "items": data,
        }
        response = HttpResponse(json.dumps(body, indent=2), content_type="application/json")
    else:
        out = io.StringIO()
        writer = csv_writer(out)
        writer.writerow(selectors.REPORT_COLUMNS)
        writer.writerows([[row[c] for c in selectors.REPORT_COLUMNS] for row in data])
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
