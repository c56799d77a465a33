"""The registry of audit actions: each registered once, with the sentence that renders it.

Placeholders: {actor}, {target}, {workspace}, {in_workspace} (" in Production" when the event
has a workspace), and any scalar key of the event's `details` (e.g. {from_role}, {to_role}).
Recording an action that is not here raises.
"""

from __future__ import annotations

import json
import string

EVENTS: dict[str, str] = {
    "org.created": "{actor} created the organization {target}",
    "org.updated": "{actor} updated the organization {target}",
    "org.deleted": "{actor} deleted the organization {target}",
    "org.ownership_transferred": "{actor} made {target} an owner of the organization",
    "workspace.created": "{actor} created the workspace {target}",
    "workspace.linked": "{actor} linked the workspace {target}",
    "workspace.unlinked": "{actor} unlinked the workspace {target}",
    "workspace.deleted": "{actor} deleted the workspace {target}",
    "member.invited": "{actor} invited {target} as {role}",
    "member.invite_resent": "{actor} resent the invitation to {target}",
    "member.invite_revoked": "{actor} revoked the invitation to {target}",
    "member.joined": "{target} joined the organization as {role}",
    "member.role_changed": "{actor} changed {target}'s role{in_workspace} from {from_role} to {to_role}",
    "member.access_granted": "{actor} gave {target} {role} access to {workspace}",
    "member.access_changed": "{actor} changed {target}'s role in {workspace} from {from_role} to {to_role}",
    "member.access_revoked": "{actor} removed {target}'s access to {workspace}",
    "member.removed": "{actor} removed {target} from the organization",
    "member.left": "{target} left the organization",
    "member.suspended": "{actor} suspended {target}",
    "member.unsuspended": "{actor} unsuspended {target}",
    "access_review.started": "{actor} started the access review {target}",
    "access_review.grant_kept": "{actor} kept {target}'s {role} access to {workspace_label} in an access review",
    "access_review.grant_gone": "{actor} reviewed {target}'s access to {workspace_label}, which was already gone",
    "access_review.completed": "The access review {target} was completed",
    "member.reinstated": "{actor} reinstated {target} as {role} with their previous access",
    "governance.policy_created": "{actor} set the policy {target}",
    "governance.policy_updated": "{actor} changed the policy {target}",
    "governance.policy_deleted": "{actor} removed the policy {target}",
    "billing.plan_changed": "{actor} changed the plan from {from_plan} to {to_plan}",
    "billing.payment_method_added": "{actor} added the payment method {target}",
    "billing.payment_method_removed": "{actor} removed the payment method {target}",
    "billing.settings_updated": "{actor} updated the billing settings",
    "billing.invoice_closed": "{actor} closed {month} into invoice {invoice} ({amount}, {status})",
    "resource.created": "{actor} created the {resource_kind} {target} in {workspace}",
    "resource.updated": "{actor} updated the {resource_kind} {target} in {workspace}",
    "resource.deleted": "{actor} deleted the {resource_kind} {target} in {workspace}",
    "sync.run_succeeded": "Sync {target} in {workspace} succeeded ({rows_processed} rows)",
    "sync.run_failed": "Sync {target} in {workspace} failed",
    "token.created": "{actor} created the API token {target}",
    "token.revoked": "{actor} revoked the API token {target}",
    "account.two_factor_enabled": "{actor} turned on two-factor sign-in",
    "account.two_factor_disabled": "{actor} turned off two-factor sign-in",
    "account.recovery_codes_regenerated": "{actor} generated new two-factor recovery codes",
    "account.recovery_code_used": "{actor} signed in with a recovery code ({remaining} left)",
    "account.profile_updated": "{actor} changed their name from {from_name} to {to_name}",
    "account.email_change_requested": "{actor} asked to change their email to {to_email}",
    "account.email_changed": "{actor} changed their email from {from_email} to {to_email}",
    "account.closed": "{actor} closed their account",
    "account.session_signed_out": "{actor} signed out a session ({browser})",
    "account.other_sessions_signed_out": "{actor} signed out of {count} other sessions",
    "member.signed_out_everywhere": "{actor} signed {target} out of every session ({count})",
    "account.email_verified": "{actor} confirmed their email address (by {via})",
    "account.two_factor_reset": "{actor} reset {target}'s two-factor sign-in and signed them out everywhere",
    "account.signin_unlocked": "{actor} cleared the sign-in lock on {target}",
    "org.ownership_recovered": "{actor} made {target} an owner of the organization (ownership recovery)",
    "support.ownership_recovery_requested": "{actor} asked {target} to confirm making {new_owner} an owner",
    "support.rollup_rerun": "{actor} recomputed the usage figures from {start} to {end}",
    "support.audit_chain_verified": "{actor} verified the audit log's hash chain: {outcome}",
    "support.view_as_started": "{actor} started viewing the organization as its admins see it, for {minutes} minutes",
    "support.org_viewed": "{actor} viewed {page}",
    "support.view_as_ended": "{actor} stopped viewing the organization",
    "sso.domain_added": "{actor} added the domain {target} for verification",
    "sso.domain_verified": "{actor} verified the domain {target}",
    "sso.domain_removed": "{actor} removed the domain {target}",
    "sso.member_provisioned": "{target} joined the organization as {role} through single sign-on ({source})",
    "sso.signed_in": "{target} signed in through single sign-on ({source})",
    "sso.signin_refused": "A single sign-on ({source}) was refused: {reason}",
    "sso.saml_configured": "{actor} configured SAML single sign-on with {target}",
    "sso.saml_removed": "{actor} removed SAML single sign-on",
    "sso.metadata_refreshed": "{actor} refreshed the identity provider's SAML metadata from {metadata_url}",
    "sso.metadata_refresh_failed": "Refreshing the identity provider's SAML metadata from {metadata_url} failed: {message}",
    "sso.oidc_configured": "{actor} configured OpenID Connect single sign-on with {target}",
    "sso.oidc_removed": "{actor} removed OpenID Connect single sign-on",
    "sso.break_glass_signin": "{target} signed in with a password and two-factor code while single sign-on is required (break-glass)",
    "scim.token_created": "{actor} created the SCIM token {target}",
    "scim.token_revoked": "{actor} revoked the SCIM token {target}",
    "scim.mapping_set": "{actor} mapped the SCIM group {group} to {role} access in {workspace}",
    "scim.mapping_removed": "{actor} removed the mapping of the SCIM group {group} to {workspace}",
    "scim.user_provisioned": "{actor} provisioned {target} into the organization",
    "scim.user_updated": "{actor} updated {target}'s SCIM record",
    "scim.user_deprovisioned": "{actor} deprovisioned {target}: organization membership and workspace access removed",
    "scim.user_deleted": "{actor} deleted {target}'s SCIM record",
    "scim.user_refused": "{actor} was refused provisioning {target}: {message}",
    "scim.group_created": "{actor} created the SCIM group {target}",
    "scim.group_updated": "{actor} updated the SCIM group {target}",
    "scim.group_deleted": "{actor} deleted the SCIM group {target}",
    "audit.pruned": "{actor} archived and removed {count} events older than {before}",
    "audit.stream_destination_added": "{actor} added the audit stream destination {target} ({url})",
    "audit.stream_destination_removed": "{actor} removed the audit stream destination {target} ({url})",
    "audit.stream_destination_disabled": "{actor} disabled the audit stream destination {target}: {reason}",
    "audit.stream_destination_enabled": "{actor} re-enabled the audit stream destination {target}",
    "audit.stream_replayed": "{actor} replayed {count} audit events since {since} to {target}",
}


def category(action: str) -> str:
    return action.split(".", 1)[0]


CATEGORIES = sorted({category(a) for a in EVENTS})


class _Blank(dict):
    def __missing__(self, key):
        return ""


def actor_name(event) -> str:
    """Who acted, as a person reads it: "Bob Admin", "Bob Admin (API token)", "System"."""
    name = event.actor_label or "System"
    if event.actor_type == "token":
        return f"{name} (API token)"
    if event.actor_type == "support":
        ticket = (event.details or {}).get("support_ticket") or "no ticket"
        return f"Support engineer {name} (ticket {ticket})"
    return name


def render_sentence(event) -> str:
    """The event as one sentence, e.g. "Bob Admin changed Carol Member's role in Production
    from member to admin". Missing placeholders render empty rather than failing."""
    template = EVENTS.get(event.action, event.action)
    details = event.details or {}
    values = _Blank({k: v for k, v in details.items() if isinstance(v, str | int | float | bool)})
    workspace = event.workspace_label or ""
    values.update(
        actor=actor_name(event),
        target=event.target_label or event.target_id or "",
        workspace=workspace or "a workspace",
        in_workspace=f" in {workspace}" if workspace else "",
    )
    sentence = string.Formatter().vformat(template, (), values)
    mentions_workspace = "{workspace}" in template or "{in_workspace}" in template
    if workspace and not mentions_workspace and event.target_type != "workspace":
        sentence += f" in {workspace}"
    return sentence


def detail_rows(event) -> list[tuple[str, str]]:
    """The event's details as (label, text) pairs for the expandable part of a log row.

    `changes` ({field: {from, to}}) reads as "field: old → new"; `before`/`after` snapshots
    are listed field by field; anything else is shown as compact JSON.
    """
    rows: list[tuple[str, str]] = []
    details = event.details or {}
    for key, value in details.items():
        if key == "changes" and isinstance(value, dict):
            for field, change in value.items():
                if isinstance(change, dict) and {"from", "to"} <= change.keys():
                    rows.append((field, f"{_text(change['from'])} → {_text(change['to'])}"))
                else:
                    rows.append((field, _text(change)))
        elif key in ("before", "after") and isinstance(value, dict):
            for field, v in value.items():
                rows.append((f"{key} · {field}", _text(v)))
        else:
            rows.append((key.replace("_", " "), _text(value)))
    return rows


def _text(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)
