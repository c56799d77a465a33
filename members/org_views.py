"""Organization › Members: directory, pending invitations, invite, a member's page and actions."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from audit.events import render_sentence
from config.csvsafe import csv_writer
from config.dbrouter import replica_reads
from config.errors import DomainError, ValidationFailed
from config.htmx import render_page
from config.roles import Role
from members import bulk, selectors
from members.invitation_email import invitation_link
from members.invitations import (
    MAX_EMAILS_AT_ONCE,
    access_on_accept,
    get_invitation,
    invitation_resend,
    invitation_revoke,
    invite_problems,
    member_invite,
    parse_emails,
)
from members.lifecycle import (
    REINSTATE_WINDOW,
    may_suspend,
    member_reinstate,
    member_suspend,
    member_unsuspend,
    reinstate_preview,
    removed_members,
)
from members.models import OrgMembership
from members.services import (
    may_manage_member,
    member_change_role,
    member_leave,
    member_remove,
    member_set_workspace_access,
)
from orgs.decorators import org_view
from orgs.permissions import OrgCapability, org_can, require_org
from orgs.selectors import member_removal_impact

COLUMNS = [
    ("name", "Name"),
    ("email", "Email"),
    ("role", "Org Role"),
    ("workspaces", "Workspaces"),
    ("last_active", "Last Active"),
    ("joined", "Joined"),
]


def _roles_for(viewer_role: Role) -> list[Role]:
    """The roles the viewer may hand out: owners everything, admins up to admin."""
    return [r for r in Role if r < Role.OWNER or org_can(viewer_role, OrgCapability.MANAGE_OWNERS)]


# --- directory ------------------------------------------------------------------------------


def _directory_url(request, query: selectors.DirectoryQuery, **changes) -> str:
    params = {
        "q": query.q,
        "role": query.role,
        "workspace": query.workspace,
        "two_factor": query.two_factor,
        "status": query.status,
        "sort": query.sort_param,
        "page": query.page,
    }
    params.update(changes)
    qd = QueryDict(mutable=True)
    for key, value in params.items():
        if (
            value not in ("", None)
            and not (key == "sort" and value == "name")
            and not (key == "page" and value == 1)
        ):
            qd[key] = str(value)
    base = reverse("org_members:directory", args=[request.org.slug])
    return f"{base}?{qd.urlencode()}" if qd else base


def _directory_csv(org, query: selectors.DirectoryQuery) -> StreamingHttpResponse:
    """Every member matching the directory's filters (all pages), in its sort order."""

    class Echo:
        def write(self, value):
            return value

    writer = csv_writer(Echo())
    header = (
        "member_id",
        "name",
        "email",
        "org_role",
        "workspaces",
        "two_factor",
        "last_active",
        "joined",
    )

    def rows():
        yield writer.writerow(header)
        for m in selectors.directory_members(org, query).iterator(chunk_size=500):
            yield writer.writerow(
                (
                    m.public_id,
                    m.user.full_name,
                    m.user.email,
                    m.role_name,
                    m.workspace_count,
                    "on" if m.has_two_factor else "off",
                    m.user.last_active_at.isoformat() if m.user.last_active_at else "",
                    m.joined_at.isoformat(),
                )
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="members-{org.slug}-{stamp}.csv"'
    return response


@org_view()
@replica_reads
def directory(request):
    org = request.org
    query = selectors.DirectoryQuery.from_params(request.GET)
    can_manage = org_can(request.org_role, OrgCapability.MANAGE_MEMBERS)
    if not can_manage:
        query.two_factor = ""  # two-factor status is for owners and admins
    if request.GET.get("format") == "csv":
        require_org(request.org_role, OrgCapability.MANAGE_MEMBERS)
        return _directory_csv(org, query)
    counts = selectors.directory_counts(org)
    paginator = Paginator(selectors.directory_members(org, query), selectors.PAGE_SIZE)
    if query.unfiltered:
        # The tab badge already counted every member: the paginator need not count again.
        paginator.count = counts["members"]
    page = paginator.get_page(query.page)
    query.page = page.number
    columns = []
    for key, label in COLUMNS:
        current = query.sort == key
        next_sort = f"-{key}" if current and not query.desc else key
        columns.append(
            {
                "key": key,
                "label": label,
                "href": _directory_url(request, query, sort=next_sort, page=1),
                "aria_sort": ("descending" if query.desc else "ascending") if current else "none",
                "arrow": ("↓" if query.desc else "↑") if current else "",
            }
        )
    context = {
        "org": org,
        "query": query,
        "page": page,
        "columns": columns,
        "prev_href": _directory_url(request, query, page=page.number - 1)
        if page.has_previous()
        else "",
        "next_href": _directory_url(request, query, page=page.number + 1)
        if page.has_next()
        else "",
        "roles": list(Role),
        "workspaces": selectors.org_workspaces(org),
        "counts": counts,
        "can_manage": can_manage,
        "bulk_actions": bulk.MEMBER_ACTIONS,
        "csv_href": _directory_url(request, query, page=1, format="csv"),
        "tab": "members",
    }
    return render_page(request, "members/directory.html", "rows", context)


@org_view(OrgCapability.VIEW_INVITATIONS)
def invitations(request):
    org = request.org
    return render(
        request,
        "members/invitations.html",
        {
            "org": org,
            "invitations": selectors.pending_invitations(org),
            "counts": selectors.directory_counts(org),
            "can_manage": org_can(request.org_role, OrgCapability.MANAGE_MEMBERS),
            "tab": "invitations",
            "fresh_links": _pop_fresh_links(request, org),
            "invitation_ttl_days": settings.INVITATION_TTL_DAYS,
        },
    )


FRESH_LINKS_KEY = "fresh_invitation_links"


def _keep_fresh_links(request, org, invitations_and_tokens) -> None:
    """Remember the links just issued, for one "Copy link" on the next invitations page.

    Raw tokens are never stored in the database; the session holds them until that page.
    """
    links = request.session.get(FRESH_LINKS_KEY, {})
    links[org.slug] = {
        inv.public_id: invitation_link(token) for inv, token in invitations_and_tokens
    }
    request.session[FRESH_LINKS_KEY] = links


def _pop_fresh_links(request, org) -> dict[str, str]:
    links = request.session.get(FRESH_LINKS_KEY) or {}
    mine = links.pop(org.slug, None) or {}
    if mine:
        request.session[FRESH_LINKS_KEY] = links
    return mine


def _invitation_action(request, invitation_id, action):
    org = request.org
    try:
        inv = get_invitation(org, invitation_id)
        if action == "resend":
            inv, token = invitation_resend(actor=request.user, invitation=inv)
            _keep_fresh_links(request, org, [(inv, token)])
            messages.success(
                request,
                f"A fresh invitation link is on its way to {inv.email}; it is valid for "
                f"{settings.INVITATION_TTL_DAYS} days "
                "and the previous link no longer works.",
            )
        else:
            invitation_revoke(actor=request.user, invitation=inv)
            messages.success(request, f"The invitation to {inv.email} is revoked.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("org_members:invitations", org_slug=org.slug)


@require_POST
@org_view(OrgCapability.MANAGE_MEMBERS)
def invitation_resend_view(request, invitation_id):
    return _invitation_action(request, invitation_id, "resend")


@require_POST
@org_view(OrgCapability.MANAGE_MEMBERS)
def invitation_revoke_view(request, invitation_id):
    return _invitation_action(request, invitation_id, "revoke")


# --- invite ---------------------------------------------------------------------------------


class InviteForm(forms.Form):
    emails = forms.CharField(
        label="Email addresses",
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "ana@acme.com, ben@acme.com\nor one per line"}
        ),
        help_text=f"Paste up to {MAX_EMAILS_AT_ONCE} addresses, separated by commas, spaces or new "
        "lines.",
    )
    org_role = forms.TypedChoiceField(label="Organization role", coerce=int)

    def __init__(self, *args, roles, workspaces, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["org_role"].choices = [(int(r), r.title) for r in roles]
        self.fields["org_role"].initial = int(Role.MEMBER)
        self.workspaces = list(workspaces)
        for ws in self.workspaces:
            self.fields[f"ws_{ws.public_id}"] = forms.TypedChoiceField(
                label=ws.name,
                required=False,
                coerce=int,
                empty_value=None,
                choices=[("", "No access")] + [(int(r), r.title) for r in roles],
            )

    def workspace_fields(self):
        return [(ws, self[f"ws_{ws.public_id}"]) for ws in self.workspaces]

    def clean_emails(self):
        emails = parse_emails(self.cleaned_data["emails"])
        if not emails:
            raise forms.ValidationError("Enter at least one email address.")
        if len(emails) > MAX_EMAILS_AT_ONCE:
            raise forms.ValidationError(f"Invite at most {MAX_EMAILS_AT_ONCE} people at once.")
        return emails

    def grants(self) -> dict[int, Role]:
        return {
            ws.pk: Role(self.cleaned_data[f"ws_{ws.public_id}"])
            for ws in self.workspaces
            if self.cleaned_data.get(f"ws_{ws.public_id}")
        }


def _invite_form(request, data=None):
    return InviteForm(
        data,
        roles=_roles_for(request.org_role),
        workspaces=selectors.org_workspaces(request.org),
    )


def _preview(request, form) -> list[dict]:
    """What each pasted address would get, or why it cannot be invited (read-only)."""
    emails = parse_emails(form.data.get("emails", ""))[:MAX_EMAILS_AT_ONCE]
    if not emails:
        return []
    try:
        org_role = Role(int(form.data.get("org_role", Role.MEMBER)))
    except ValueError:
        org_role = Role.MEMBER
    grants = {}
    for ws in form.workspaces:
        value = form.data.get(f"ws_{ws.public_id}")
        if value and value.isdigit() and int(value) in Role.values:
            grants[ws.pk] = Role(int(value))
    gets = access_on_accept(request.org, grants)  # what accepting will give, decided there
    access = []
    # The chosen grants first, then the policy's (a stable sort keeps the workspaces' order).
    for ws in sorted((w for w in form.workspaces if w.pk in gets), key=lambda w: gets[w.pk][1]):
        role, from_policy = gets[ws.pk]
        why = ", from the default access policy" if from_policy else ""
        access.append(f"{ws.name} ({role.label}{why})")
    problems = invite_problems(request.org, emails)
    return [
        {
            "email": email,
            "problem": problems[email].message if email in problems else "",
            "org_role": org_role.label,
            "access": access,
        }
        for email in emails
    ]


@org_view(OrgCapability.MANAGE_MEMBERS)
def invite(request):
    form = _invite_form(request, request.POST or None)
    status, per_email = 200, {}
    if request.method == "POST" and "preview" not in request.POST and form.is_valid():
        try:
            sent = member_invite(
                actor=request.user,
                org=request.org,
                emails=form.cleaned_data["emails"],
                org_role=Role(form.cleaned_data["org_role"]),
                grants=form.grants(),
            )
        except DomainError as exc:
            status = exc.status
            per_email = getattr(exc, "per_email", {})
            for field, message in exc.fields.items():
                if field in form.fields:
                    form.add_error(field, message)
            if not per_email:
                form.add_error(None, exc.message)
            else:
                form.add_error("emails", "Nobody was invited: fix or remove the addresses below.")
        else:
            names = ", ".join(i.email for i in sent)
            _keep_fresh_links(request, request.org, [(i, i.token) for i in sent])
            messages.success(request, f"Invited {len(sent)}: {names}. The emails are on their way.")
            return redirect("org_members:invitations", org_slug=request.org.slug)
    elif request.method == "POST" and not form.is_valid():
        status = 422
    preview = _preview(request, form) if request.method == "POST" else []
    return render(
        request,
        "members/invite.html",
        {
            "org": request.org,
            "form": form,
            "preview": preview,
            "per_email": per_email,
            "counts": selectors.directory_counts(request.org),
            "invitation_ttl_days": settings.INVITATION_TTL_DAYS,
        },
        status=status,
    )


@require_POST
@org_view(OrgCapability.MANAGE_MEMBERS)
def invite_preview(request):
    form = _invite_form(request, request.POST)
    return render(
        request,
        "members/invite.html#preview",
        {"org": request.org, "form": form, "preview": _preview(request, form), "per_email": {}},
    )


# --- a member's page ------------------------------------------------------------------------


def _member_context(request, membership) -> dict:
    org, viewer_role = request.org, request.org_role
    target_role = Role(membership.role)
    is_self = membership.user_id == request.user.pk
    can_manage = may_manage_member(viewer_role, target_role)
    grants = selectors.member_grants(org, membership)
    held = {g.membership.workspace_id: g.membership for g in grants}
    show_activity = is_self or org_can(viewer_role, OrgCapability.VIEW_USAGE_AUDIT)
    activity = selectors.member_recent_activity(org, membership) if show_activity else []
    can_suspend = may_suspend(
        actor=request.user, actor_role=viewer_role, org=org, membership=membership
    )
    from orgs.scim.services import managed_identity, managed_workspaces

    scim_identity = managed_identity(org, membership.user)
    scim_managed = managed_workspaces(org, membership.user) if scim_identity else {}
    return {
        "scim_identity": scim_identity,
        "scim_managed": scim_managed,
        "org": org,
        "member": membership,
        "member_role": target_role,
        "is_self": is_self,
        "can_manage": can_manage,
        "can_suspend": can_suspend,
        "grants": grants,
        "grantable": [
            (ws, held.get(ws.pk), scim_managed.get(ws.pk))
            for ws in selectors.org_workspaces(org)
            if can_manage
        ],
        "roles": _roles_for(viewer_role),
        "show_activity": show_activity,
        "activity": [(e, render_sentence(e)) for e in activity],
    }


def _member_page(request, membership, *, error: DomainError | None = None):
    context = _member_context(request, membership)
    context["error"] = error
    return render(request, "members/member.html", context, status=error.status if error else 200)


@org_view()
def member_detail(request, member_id):
    return _member_page(request, selectors.member_for_viewer(request.org, member_id))


def _role_from(value) -> Role:
    try:
        return Role(int(value))
    except (TypeError, ValueError):
        raise ValidationFailed(
            "Choose member, admin or owner.", fields={"role": "Choose a role."}
        ) from None


@require_POST
@org_view(OrgCapability.MANAGE_MEMBERS)
def member_role(request, member_id):
    membership = selectors.member_for_viewer(request.org, member_id)
    try:
        role = _role_from(request.POST.get("role"))
        member_change_role(actor=request.user, org=request.org, membership=membership, role=role)
    except DomainError as exc:
        return _member_page(request, membership, error=exc)
    messages.success(request, f"{membership.user.display_name} is now {role.label}.")
    return redirect("org_members:detail", org_slug=request.org.slug, member_id=member_id)


@require_POST
@org_view(OrgCapability.MANAGE_MEMBERS)
def member_access(request, member_id):
    """Grant, change (role given) or revoke (empty role) access to one linked workspace."""
    membership = selectors.member_for_viewer(request.org, member_id)
    ws = selectors.org_workspaces(request.org).filter(public_id=request.POST.get("workspace"))
    try:
        workspace = ws.first()
        if workspace is None:
            raise ValidationFailed(
                "Choose a workspace linked to this organization.",
                fields={"workspace": "Not a linked workspace."},
            )
        raw = request.POST.get("role") or None
        role = _role_from(raw) if raw else None
        member_set_workspace_access(
            actor=request.user,
            org=request.org,
            membership=membership,
            access={workspace.pk: role},
        )
    except DomainError as exc:
        return _member_page(request, membership, error=exc)
    who = membership.user.display_name
    messages.success(
        request,
        f"{who} now has {role.label} access to {workspace.name}."
        if role
        else f"{who} no longer has access to {workspace.name}.",
    )
    return redirect("org_members:detail", org_slug=request.org.slug, member_id=member_id)


@require_POST
@org_view(OrgCapability.SUSPEND_MEMBERS)
def member_suspend_view(request, member_id):
    membership = selectors.member_for_viewer(request.org, member_id)
    try:
        member_suspend(
            actor=request.user,
            org=request.org,
            membership=membership,
            reason=request.POST.get("reason", ""),
        )
    except DomainError as exc:
        return _member_page(request, membership, error=exc)
    messages.success(
        request,
        f"{membership.user.display_name} is suspended: they keep their role and access but "
        f"cannot use {request.org.name} until you unsuspend them.",
    )
    return redirect("org_members:detail", org_slug=request.org.slug, member_id=member_id)


@require_POST
@org_view(OrgCapability.SUSPEND_MEMBERS)
def member_unsuspend_view(request, member_id):
    membership = selectors.member_for_viewer(request.org, member_id)
    try:
        member_unsuspend(actor=request.user, org=request.org, membership=membership)
    except DomainError as exc:
        return _member_page(request, membership, error=exc)
    messages.success(request, f"{membership.user.display_name} can use {request.org.name} again.")
    return redirect("org_members:detail", org_slug=request.org.slug, member_id=member_id)


@org_view(OrgCapability.REINSTATE_MEMBERS)
def removed(request):
    """Members removed in the reinstating window who can be reinstated with their previous access."""
    return render(
        request,
        "members/removed.html",
        {
            "org": request.org,
            "removals": removed_members(request.org),
            "reinstate_window_days": REINSTATE_WINDOW.days,
            "counts": selectors.directory_counts(request.org),
            "can_manage": org_can(request.org_role, OrgCapability.MANAGE_MEMBERS),
            "tab": "removed",
        },
    )


@org_view(OrgCapability.REINSTATE_MEMBERS)
def reinstate(request, event_id):
    """GET: the preview (role, grants restored and skipped, why); POST: reinstate."""
    plan = reinstate_preview(actor=request.user, org=request.org, event_id=event_id)
    error = None
    if request.method == "POST":
        try:
            membership = member_reinstate(actor=request.user, org=request.org, event_id=event_id)
        except DomainError as exc:
            error = exc
        else:
            messages.success(
                request,
                f"{plan.user.display_name} is back in {request.org.name} as {plan.org_role.label}.",
            )
            return redirect(
                "org_members:detail", org_slug=request.org.slug, member_id=membership.public_id
            )
    return render(
        request,
        "members/reinstate.html",
        {"org": request.org, "plan": plan, "error": error, "tab": "removed"},
        status=error.status if error else 200,
    )


def _impact(request, membership) -> list:
    return member_removal_impact(request.org, membership)


@org_view(OrgCapability.MANAGE_MEMBERS)
def member_remove_view(request, member_id):
    """GET: the impact preview; POST: remove from the org and every linked workspace."""
    membership = selectors.member_for_viewer(request.org, member_id)
    error = None
    if request.method == "POST":
        try:
            member_remove(actor=request.user, org=request.org, membership=membership)
        except DomainError as exc:
            error = exc
        else:
            messages.success(
                request,
                f"{membership.user.display_name} was removed from {request.org.name} and its "
                "workspaces.",
            )
            return redirect("org_members:directory", org_slug=request.org.slug)
    return render(
        request,
        "members/remove.html",
        {
            "org": request.org,
            "member": membership,
            "impact": _impact(request, membership),
            "leaving": False,
            "error": error,
        },
        status=error.status if error else 200,
    )


@org_view()
def leave(request):
    """GET: what you lose; POST: leave the organization (refused for the last owner)."""
    own = request.org.memberships.filter(user=request.user).values_list("public_id", flat=True)
    # Removed since the guard ran (a concurrent removal): the same 404 as for any non-member.
    membership = selectors.member_for_viewer(request.org, own.first() or "")
    error = None
    if request.method == "POST":
        try:
            member_leave(actor=request.user, org=request.org)
        except DomainError as exc:
            error = exc
        else:
            messages.success(request, f"You left {request.org.name}.")
            return redirect("workspaces:home")
    return render(
        request,
        "members/remove.html",
        {
            "org": request.org,
            "member": membership,
            "impact": _impact(request, membership),
            "leaving": True,
            "error": error,
        },
        status=error.status if error else 200,
    )


# --- bulk actions ---------------------------------------------------------------------------


def _bulk_page(request, *, kind: str, rows: list, action_labels: dict, ids: list, **extra):
    """The preview (or, after confirming, the outcome) of one bulk action on members or
    invitations: one row each, on the directory tab `kind`."""
    action = request.POST.get("action", "")
    return render(
        request,
        "members/bulk.html",
        {
            "org": request.org,
            "counts": selectors.directory_counts(request.org),
            "can_manage": True,
            "rows": rows,
            "applied": _bulk_confirmed(request),
            "kind": kind,
            "tab": kind,
            "action": action,
            "action_label": action_labels[action],
            "ids": ids,
            "ok_count": sum(r.ok for r in rows),
            **extra,
        },
    )


def _bulk_confirmed(request) -> bool:
    """The first POST previews (a dry run); the confirm button posts again with confirm=1."""
    return request.POST.get("confirm") == "1"


@require_POST
@org_view(OrgCapability.MANAGE_MEMBERS)
def members_bulk_view(request):
    """Selected members × one action: a dry-run preview of every row, then confirm to apply."""
    org = request.org
    ids = request.POST.getlist("members")[: bulk.MAX_BULK]
    memberships = list(
        OrgMembership.objects.filter(organization=org, public_id__in=ids)
        .select_related("user")
        .order_by("user__full_name", "user__email")
    )
    action = request.POST.get("action", "")
    errors = {}
    if not memberships:
        errors["members"] = "Select at least one member."
    if action not in bulk.MEMBER_ACTIONS:
        errors["action"] = "Choose what to do with the selected members."
    role = workspace = None
    if action in ("role", "grant"):
        try:
            role = _role_from(request.POST.get("role", ""))
        except DomainError:
            errors["role"] = "Choose member, admin or owner."
    if action in ("grant", "revoke"):
        workspace = (
            selectors.org_workspaces(org).filter(public_id=request.POST.get("workspace")).first()
        )
        if workspace is None:
            errors["workspace"] = "Choose a workspace linked to this organization."
    if errors:
        for message in errors.values():
            messages.error(request, message)
        return redirect("org_members:directory", org_slug=org.slug)
    rows = bulk.members_bulk(
        actor=request.user,
        org=org,
        memberships=memberships,
        action=action,
        role=role,
        workspace=workspace,
        apply=_bulk_confirmed(request),
    )
    return _bulk_page(
        request,
        kind="members",
        rows=rows,
        action_labels=bulk.MEMBER_ACTIONS,
        ids=[m.public_id for m in memberships],
        role=role,
        workspace=workspace,
    )


@require_POST
@org_view(OrgCapability.MANAGE_MEMBERS)
def invitations_bulk_view(request):
    """Resend or revoke the selected pending invitations: preview, then confirm."""
    org = request.org
    ids = request.POST.getlist("invitations")[: bulk.MAX_BULK]
    invitations = list(
        selectors.pending_invitations(org).filter(public_id__in=ids).order_by("email")
    )
    action = request.POST.get("action", "")
    if not invitations or action not in bulk.INVITATION_ACTIONS:
        messages.error(request, "Select at least one invitation, then Resend or Revoke.")
        return redirect("org_members:invitations", org_slug=org.slug)
    rows, fresh = bulk.invitations_bulk(
        actor=request.user, invitations=invitations, action=action, apply=_bulk_confirmed(request)
    )
    if fresh:
        _keep_fresh_links(request, org, fresh)
    return _bulk_page(
        request,
        kind="invitations",
        rows=rows,
        action_labels=bulk.INVITATION_ACTIONS,
        ids=[i.public_id for i in invitations],
    )
