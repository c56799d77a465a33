"""The registry of audit actions: each registered once, with the sentence that renders it.

Placeholders: {actor}, {target}, {workspace}, and any key of the event's `details`
(e.g. {from_role}, {to_role}). Recording an action that is not here raises.
"""

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
    "member.joined": "{target} joined as {role}",
    "member.role_changed": "{actor} changed {target}'s role{in_workspace} from {from_role} to {to_role}",
    "member.access_granted": "{actor} gave {target} {role} access to {workspace}",
    "member.access_changed": "{actor} changed {target}'s access to {workspace} from {from_role} to {to_role}",
    "member.access_revoked": "{actor} removed {target}'s access to {workspace}",
    "member.removed": "{actor} removed {target} from the organization",
    "member.left": "{target} left the organization",
    "governance.policy_created": "{actor} set the policy {target}",
    "governance.policy_updated": "{actor} changed the policy {target}",
    "governance.policy_deleted": "{actor} removed the policy {target}",
    "billing.plan_changed": "{actor} changed the plan from {from_plan} to {to_plan}",
    "billing.payment_method_added": "{actor} added the payment method {target}",
    "billing.payment_method_removed": "{actor} removed the payment method {target}",
    "billing.settings_updated": "{actor} updated the billing settings",
    "resource.created": "{actor} created the {resource_kind} {target} in {workspace}",
    "resource.updated": "{actor} updated the {resource_kind} {target} in {workspace}",
    "resource.deleted": "{actor} deleted the {resource_kind} {target} in {workspace}",
    "sync.run_succeeded": "Sync {target} in {workspace} succeeded ({rows_processed} rows)",
    "sync.run_failed": "Sync {target} in {workspace} failed",
    "token.created": "{actor} created the API token {target}",
    "token.revoked": "{actor} revoked the API token {target}",
    "audit.pruned": "{actor} archived and pruned {count} events before {before}",
}


def category(action: str) -> str:
    return action.split(".", 1)[0]


CATEGORIES = sorted({category(a) for a in EVENTS})


class _Blank(dict):
    def __missing__(self, key):
        return ""


def render_sentence(event) -> str:
    """The event as one sentence, e.g. "Bob Admin changed Carol's role from member to admin"."""
    template = EVENTS.get(event.action, event.action)
    values = _Blank({k: v for k, v in (event.details or {}).items() if not isinstance(v, dict)})
    values.update(
        actor=event.actor_label or "System",
        target=event.target_label or event.target_id,
        workspace=event.workspace_label or "",
    )
    if "in_workspace" not in values and event.workspace_label and "{workspace}" not in template:
        values["in_workspace"] = f" in {event.workspace_label}"
    return string.Formatter().vformat(template, (), values)
