"""The support console in the Django admin: object tools and actions that call support services.

The account, organization and invitation admins of members/ and orgs/ are re-registered here
as subclasses that add, per object, the support actions the engineer's tier allows (links in
the object tools, each opening a form that asks for the ticket and the reason) and a box of
account-level facts. Nothing is written by the admin itself: every action is a service in
support/services.py, which checks the permission again, audits and holds the invariants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from config.errors import DomainError, ValidationFailed

if TYPE_CHECKING:
    from django.template.response import _TemplateForResponseT  # the admin's own template type
from config.roles import Role
from members.admin import InvitationAdmin, TwoFactorDeviceAdmin, UserAdmin
from members.models import Invitation, OrgMembership, TwoFactorDevice, User, normalize_email
from members.two_factor import has_two_factor
from orgs.admin import OrganizationAdmin
from orgs.models import Organization
from orgs.support_access import grant_view_as, support_access
from support import forms, services, signin_lock


@dataclass(frozen=True)
class SupportAction:
    slug: str
    title: str
    permission: str
    form: type[forms.TicketForm]
    run: Callable  # (request, obj, cleaned_data) -> HttpResponse | str (success message)
    help: str = ""
    danger: bool = False


def _apply_error(form, exc: DomainError) -> None:
    """Field errors beside their fields; anything else as the form's banner."""
    mapped = False
    for field, message in (exc.fields or {}).items():
        if field in form.fields:
            form.add_error(field, message)
            mapped = True
    if not mapped:
        form.add_error(None, exc.message)


class SupportToolsMixin:
    """Adds /admin/<app>/<model>/<id>/support/<action>/ pages and their object-tool links."""

    support_actions: tuple[SupportAction, ...] = ()
    change_form_template: ClassVar[_TemplateForResponseT | None] = "admin/support/change_form.html"

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        extra = [
            path(
                "<path:object_id>/support/<slug:action>/",
                self.admin_site.admin_view(self.support_view),
                name=f"{info[0]}_{info[1]}_support",
            )
        ]
        return extra + super().get_urls()

    def tools_for(self, request):
        return [a for a in self.support_actions if request.user.has_perm(f"support.{a.permission}")]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "support_tools": self.tools_for(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def support_view(self, request, object_id, action):
        chosen = next((a for a in self.support_actions if a.slug == action), None)
        if chosen is None:
            raise DjangoPermissionDenied  # unknown action names are not guessed at
        if not request.user.has_perm(f"support.{chosen.permission}"):
            raise DjangoPermissionDenied
        obj = get_object_or_404(self.model, pk=object_id)
        status = 200
        form = chosen.form(request.POST or None, obj=obj)
        if request.method == "POST":
            if form.is_valid():
                try:
                    outcome = chosen.run(request, obj, form.cleaned_data)
                except DomainError as exc:
                    _apply_error(form, exc)
                    status = exc.status
                else:
                    if not isinstance(outcome, str):
                        return outcome
                    self.message_user(request, outcome, messages.SUCCESS)
                    return HttpResponseRedirect(self._change_url(obj))
            else:
                status = 422
        context = {
            **self.admin_site.each_context(request),
            "title": f"{chosen.title}: {obj}",
            "opts": self.model._meta,
            "original": obj,
            "action": chosen,
            "form": form,
            "change_url": self._change_url(obj),
            "facts": self.support_facts(obj),
        }
        return TemplateResponse(request, "admin/support/action.html", context, status=status)

    def _change_url(self, obj):
        info = self.model._meta.app_label, self.model._meta.model_name
        return reverse(f"admin:{info[0]}_{info[1]}_change", args=[obj.pk])

    def support_facts(self, obj):
        return ""

    # The facts box, third on the change page (after the name/email fields).
    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "account_facts")

    def get_fields(self, request, obj=None):
        fields = [f for f in super().get_fields(request, obj) if f != "account_facts"]
        return (*fields[:2], "account_facts", *fields[2:])

    @admin.display(description="Support facts")
    def account_facts(self, obj):
        return self.support_facts(obj)


# --- people ---------------------------------------------------------------------------------


def _reset_two_factor(request, user, data):
    ended = services.support_two_factor_reset(
        engineer=request.user,
        user=user,
        organization=data.get("organization"),
        ticket=data["ticket"],
        reason=data["reason"],
    )
    return (
        f"Two-factor sign-in of {user.email} reset; {ended} session(s) signed out; "
        "they were emailed."
    )


def _clear_signin_lock(request, user, data):
    services.support_signin_unlock(
        engineer=request.user,
        user=user,
        organization=data.get("organization"),
        ticket=data["ticket"],
        reason=data["reason"],
    )
    return f"Sign-in lock of {user.email} cleared."


class SupportUserAdmin(SupportToolsMixin, UserAdmin):
    support_actions = (
        SupportAction(
            "clear-signin-lock",
            "Clear sign-in lock",
            "clear_signin_lock",
            forms.PersonForm,
            _clear_signin_lock,
            help="Forgets the failed sign-ins counted against this email, so they can sign in now.",
        ),
        SupportAction(
            "reset-two-factor",
            "Reset two-factor sign-in",
            "reset_two_factor",
            forms.PersonForm,
            _reset_two_factor,
            help="Removes their authenticator and recovery codes, signs them out on every device "
            "and emails them. Verify their identity first, as the support playbook says.",
            danger=True,
        ),
    )

    def support_facts(self, user):
        if user is None or user.pk is None:
            return ""
        memberships = (
            OrgMembership.objects.filter(user=user, organization__deleted_at__isnull=True)
            .select_related("organization")
            .order_by("organization__name")
        )
        orgs = format_html_join(
            ", ", "{} ({})", ((m.organization.name, Role(m.role).label) for m in memberships)
        )
        failures = signin_lock.failures_for(user.email)
        return format_html(
            "<ul class='support-facts'><li>Organizations: {}</li><li>Two-factor sign-in: {}</li>"
            "<li>Failed sign-ins counted now: {}</li></ul>",
            orgs or "none",
            "on" if has_two_factor(user) else "off",
            failures,
        )


# --- organizations ----------------------------------------------------------------------------


def _view_as(request, org, data):
    grant = services.support_view_as_start(
        engineer=request.user,
        org=org,
        minutes=data["minutes"],
        ticket=data["ticket"],
        reason=data["reason"],
    )
    grant_view_as(request, grant)
    return HttpResponseRedirect(reverse("org_members:directory", args=[org.slug]))


def _verify_chain(request, org, data):
    result = services.support_audit_chain_verify(
        engineer=request.user, org=org, ticket=data["ticket"], reason=data["reason"]
    )
    if result.ok:
        return f"Audit chain of {org.name} is intact: {result.count} events verified."
    messages.error(
        request,
        f"Audit chain of {org.name} is BROKEN at {result.first_bad_event or 'the end'}: "
        f"{result.problem} ({result.count} events verified before it).",
    )
    return "The verification was recorded in the customer's audit log."


def _rerun_rollup(request, org, data):
    done = services.support_rollup_rerun(
        engineer=request.user,
        org=org,
        start=data["start"],
        end=data["end"],
        ticket=data["ticket"],
        reason=data["reason"],
    )
    return (
        f"Usage of {org.name} recomputed from {done['start']} to {done['end']}: "
        f"{done['rows']} day rows over {done['workspaces']} workspace(s)."
    )


def _switch_plan(request, org, data):
    services.support_plan_switch(
        engineer=request.user,
        org=org,
        plan_code=data["plan"],
        ticket=data["ticket"],
        reason=data["reason"],
    )
    return f"{org.name} switched to the {data['plan']} plan."


def _recover_ownership(request, org, data):
    email = normalize_email(data["member_email"])
    membership = OrgMembership.objects.filter(organization=org, user__email=email).first()
    if membership is None:
        raise ValidationFailed(
            f"{email} is not a member of {org.name}.",
            fields={"member_email": "Not a member of this organization."},
        )
    outcome = services.support_ownership_recover(
        engineer=request.user,
        org=org,
        membership=membership,
        ticket=data["ticket"],
        reason=data["reason"],
    )
    if outcome.recovered:
        return f"{email} is now an owner of {org.name} (no owner was reachable)."
    return (
        f"{org.name} has a reachable owner: {', '.join(outcome.asked)} was emailed a link to "
        f"confirm. Nothing changes until they do."
    )


class SupportOrganizationAdmin(SupportToolsMixin, OrganizationAdmin):
    support_actions = (
        SupportAction(
            "view-as",
            "View as admin (read-only)",
            "view_as_admin",
            forms.ViewAsForm,
            _view_as,
            help="Opens the org's pages as its admins see them, read-only and time-boxed. "
            "Needs the org's support access; every page you open is in their audit log.",
        ),
        SupportAction(
            "verify-chain",
            "Verify audit chain",
            "verify_audit_chain",
            forms.TicketForm,
            _verify_chain,
            help="Checks every event of the org's audit log against its hash chain.",
        ),
        SupportAction(
            "rerun-rollup",
            "Re-run usage roll-up",
            "rerun_rollup",
            forms.RollupForm,
            _rerun_rollup,
            help="Recomputes the daily usage rows of the org's workspaces for the days given.",
        ),
        SupportAction(
            "switch-plan",
            "Switch to a sales-led plan",
            "switch_plan",
            forms.PlanSwitchForm,
            _switch_plan,
            help="For a contract signed with sales. Plan limits and card rules still apply.",
        ),
        SupportAction(
            "recover-ownership",
            "Recover ownership",
            "recover_ownership",
            forms.OwnershipForm,
            _recover_ownership,
            help="Makes a member owner when no owner can act. While an owner's account is "
            "active, they are emailed a link to confirm instead.",
            danger=True,
        ),
    )

    def support_facts(self, org):
        if org is None or org.pk is None:
            return ""
        from billing.models import BillingAccount

        account = BillingAccount.objects.select_related("plan").filter(organization=org).first()
        owners = services.reachable_owners(org)
        return format_html(
            "<ul class='support-facts'><li>Plan: {}</li><li>Support access: {}</li>"
            "<li>Reachable owners: {}</li></ul>",
            account.plan.name if account else "—",
            support_access(org).label,
            ", ".join(o.user.email for o in owners) or "none",
        )


# --- invitations ----------------------------------------------------------------------------


def _resend(request, inv, data):
    services.support_invitation_resend(
        engineer=request.user, invitation=inv, ticket=data["ticket"], reason=data["reason"]
    )
    return f"Invitation to {inv.email} resent with a fresh {settings.INVITATION_TTL_DAYS}-day link."


def _revoke(request, inv, data):
    services.support_invitation_revoke(
        engineer=request.user, invitation=inv, ticket=data["ticket"], reason=data["reason"]
    )
    return f"Invitation to {inv.email} revoked."


class SupportInvitationAdmin(SupportToolsMixin, InvitationAdmin):
    support_actions = (
        SupportAction(
            "resend",
            "Resend invitation",
            "resend_invitation",
            forms.TicketForm,
            _resend,
            help=f"Issues a fresh {settings.INVITATION_TTL_DAYS}-day link and emails it; the old "
            "link stops working. "
            "Needs the org's support access.",
        ),
        SupportAction(
            "revoke",
            "Revoke invitation",
            "resend_invitation",
            forms.TicketForm,
            _revoke,
            help="The link stops working. Needs the org's support access.",
            danger=True,
        ),
    )
    actions = ["support_resend", "support_revoke"]

    @admin.action(description="Resend the selected invitations (support)")
    def support_resend(self, request, queryset):
        return self._bulk(request, queryset, "support_resend", self.support_actions[0])

    @admin.action(description="Revoke the selected invitations (support)")
    def support_revoke(self, request, queryset):
        return self._bulk(request, queryset, "support_revoke", self.support_actions[1])

    def _bulk(self, request, queryset, name, action: SupportAction):
        """An admin action with an intermediate page: the ticket and reason, then one service
        call per invitation (each its own transaction and audit event)."""
        if not request.user.has_perm(f"support.{action.permission}"):
            raise DjangoPermissionDenied
        form = action.form(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            done = 0
            for inv in queryset.select_related("organization"):
                try:
                    action.run(request, inv, form.cleaned_data)
                except DomainError as exc:
                    self.message_user(request, f"{inv.email}: {exc.message}", messages.ERROR)
                else:
                    done += 1
            if done:
                self.message_user(request, f"{action.title}: {done} done.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": action.title,
            "opts": self.model._meta,
            "action": action,
            "action_name": name,
            "form": form,
            "queryset": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/support/bulk_action.html", context)


class SupportTwoFactorDeviceAdmin(TwoFactorDeviceAdmin):
    """No deleting devices here: "Reset two-factor sign-in" on the person's page does it
    through the service (audited, signs them out, emails them)."""

    def has_delete_permission(self, request, obj=None):
        return False


for model, model_admin in (
    (TwoFactorDevice, SupportTwoFactorDeviceAdmin),
    (User, SupportUserAdmin),
    (Organization, SupportOrganizationAdmin),
    (Invitation, SupportInvitationAdmin),
):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)
