"""Organization › Governance (owners and admins): the policies every linked workspace inherits."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect

from config.errors import DomainError, apply_domain_error
from config.htmx import render_page
from config.roles import Role
from orgs import governance_services
from orgs.decorators import org_view
from orgs.governance import policies_for_org
from orgs.models import GovernancePolicy
from orgs.permissions import OrgCapability
from orgs.support_access import MAX_HOURS, access_from_value
from workspaces.models import Workspace

Kind = GovernancePolicy.Kind


class DomainsForm(forms.Form):
    domains = forms.CharField(
        label="Allowed email domains",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "acme.com\nacme.co.uk"}),
        help_text="One per line or separated by commas. Invitations to other domains are refused.",
    )

    def value(self):
        return {"domains": self.cleaned_data["domains"]}


class SyncRoleForm(forms.Form):
    role = forms.ChoiceField(
        label="Minimum workspace role",
        choices=[("admin", "Admin (the default)"), ("owner", "Owner")],
        help_text="Who may create, change or delete syncs and destinations in every linked workspace.",
    )

    def value(self):
        return {"role": self.cleaned_data["role"]}


class DefaultGrantForm(forms.Form):
    workspaces = forms.MultipleChoiceField(
        label="Workspaces", widget=forms.CheckboxSelectMultiple, choices=()
    )
    role = forms.ChoiceField(
        label="Role", choices=[("member", "Member"), ("admin", "Admin")], initial="member"
    )

    def __init__(self, *args, workspaces=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workspaces"].choices = [(w.public_id, w.name) for w in workspaces]

    def value(self):
        return {"workspaces": self.cleaned_data["workspaces"], "role": self.cleaned_data["role"]}


class TwoFactorPolicyForm(forms.Form):
    enabled = forms.BooleanField(
        label="Require two-factor sign-in",
        required=False,
        help_text="Members without it are sent to enrol before they can use the org's workspaces.",
    )

    def value(self):
        return {"enabled": self.cleaned_data["enabled"]}


class RequireSsoForm(forms.Form):
    enabled = forms.BooleanField(
        label="Require single sign-on",
        required=False,
        help_text="Everyone whose email is in a verified domain must sign in through the "
        "organization's identity provider; owners keep a password and two-factor way in.",
    )

    def value(self):
        return {"enabled": self.cleaned_data["enabled"]}


class SupportAccessForm(forms.Form):
    mode = forms.ChoiceField(
        label="Support may view this organization",
        choices=[("off", "Off"), ("hours", "For a number of hours"), ("always", "Always")],
        widget=forms.RadioSelect,
        initial="off",
        help_text="Read-only, for answering your tickets. Every support view and action "
        "appears in the audit log with the engineer's name and ticket.",
    )
    hours = forms.IntegerField(
        label="Hours", required=False, min_value=1, max_value=MAX_HOURS, initial=24
    )

    def clean(self):
        data = super().clean()
        if data.get("mode") == "hours" and not data.get("hours"):
            self.add_error("hours", "Give a number of hours.")
        return data

    def value(self):
        return {"mode": self.cleaned_data["mode"], "hours": self.cleaned_data.get("hours")}


SECTIONS = [
    (Kind.ALLOWED_EMAIL_DOMAINS, DomainsForm),
    (Kind.SYNC_MIN_ROLE, SyncRoleForm),
    (Kind.DEFAULT_WORKSPACE_GRANT, DefaultGrantForm),
    (Kind.REQUIRE_TWO_FACTOR, TwoFactorPolicyForm),
    (Kind.SUPPORT_ACCESS, SupportAccessForm),
    (Kind.REQUIRE_SSO, RequireSsoForm),
]
FORM_OF = dict(SECTIONS)


def _initial(kind: str, policy) -> dict:
    value = policy.value if policy else {}
    if kind == Kind.ALLOWED_EMAIL_DOMAINS:
        return {"domains": "\n".join(value.get("domains", []))}
    if kind == Kind.SYNC_MIN_ROLE:
        return {"role": Role(value.get("role", Role.ADMIN)).label}
    if kind == Kind.DEFAULT_WORKSPACE_GRANT:
        return {
            "workspaces": value.get("workspaces", []),
            "role": Role(value.get("role", Role.MEMBER)).label,
        }
    if kind == Kind.SUPPORT_ACCESS:
        access = access_from_value(value)
        if not access.granted:
            return {"mode": "off", "hours": value.get("hours") or 24}
        return {"mode": "hours" if access.until else "always", "hours": value.get("hours") or 24}
    return {"enabled": bool(value.get("enabled"))}


def _summary(kind: str, policy, names: dict[str, str]) -> str:
    if policy is None:
        return {
            Kind.ALLOWED_EMAIL_DOMAINS: "Not set: invitations to any email domain.",
            Kind.SYNC_MIN_ROLE: "Not set: workspace admins and owners manage syncs.",
            Kind.DEFAULT_WORKSPACE_GRANT: "Not set: new members get no workspace access.",
            Kind.REQUIRE_TWO_FACTOR: "Not set: two-factor sign-in is optional.",
            Kind.SUPPORT_ACCESS: access_from_value(None).label,
            Kind.REQUIRE_SSO: "Not set: single sign-on is optional.",
        }[Kind(kind)]
    value = policy.value
    if kind == Kind.SUPPORT_ACCESS:
        return access_from_value(value).label
    if kind == Kind.ALLOWED_EMAIL_DOMAINS:
        return "Only " + ", ".join(value.get("domains", [])) + "."
    if kind == Kind.SYNC_MIN_ROLE:
        return f"Workspace {Role(value['role']).label}s and above manage syncs and destinations."
    if kind == Kind.DEFAULT_WORKSPACE_GRANT:
        listed = [names.get(w, f"{w} (no longer linked)") for w in value.get("workspaces", [])]
        return f"New members get {Role(value['role']).label} access to {', '.join(listed)}."
    return "Required." if value.get("enabled") else "Not required."


def _render(request, bound: dict | None = None, status: int = 200):
    org = request.org
    workspaces = list(Workspace.objects.filter(organization=org).order_by("name"))
    names = {w.public_id: w.name for w in workspaces}
    policies = policies_for_org(org)
    sections = []
    for kind, form_class in SECTIONS:
        policy = policies.get(kind)
        extra = {"workspaces": workspaces} if form_class is DefaultGrantForm else {}
        form = (bound or {}).get(kind) or form_class(
            initial=_initial(kind, policy), prefix=kind, **extra
        )
        sections.append(
            {
                "kind": kind,
                "title": Kind(kind).label,
                "policy": policy,
                "summary": _summary(kind, policy, names),
                "form": form,
            }
        )
    return render_page(
        request,
        "orgs/governance.html",
        "policies",
        {"org": org, "sections": sections, "tab": "governance", "has_workspaces": bool(workspaces)},
        status=status,
    )


@org_view(OrgCapability.MANAGE_GOVERNANCE)
def governance(request):
    if request.method != "POST":
        return _render(request)
    kind = request.POST.get("kind", "")
    form_class = FORM_OF.get(kind)
    if form_class is None:
        messages.error(request, "Unknown policy.")
        return _render(request, status=422)
    extra = {}
    if form_class is DefaultGrantForm:
        extra["workspaces"] = Workspace.objects.filter(organization=request.org).order_by("name")
    form = form_class(request.POST, prefix=kind, **extra)
    try:
        if request.POST.get("action") == "delete":
            governance_services.policy_delete(actor=request.user, org=request.org, kind=kind)
            done = f"{Kind(kind).label}: policy removed."
        elif form.is_valid():
            governance_services.policy_set(
                actor=request.user, org=request.org, kind=kind, value=form.value()
            )
            done = f"{Kind(kind).label}: policy saved."
        else:
            return _render(request, {kind: form}, status=422)
    except DomainError as exc:
        if exc.status == 403:
            raise
        apply_domain_error(form, exc)
        return _render(request, {kind: form}, status=exc.status)
    messages.success(request, done)
    if request.htmx:
        return _render(request)
    return redirect("orgs:governance", org_slug=request.org.slug)
