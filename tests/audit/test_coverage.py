"""The audit coverage check itself: every recorded action is noticed; the registry is listed."""

from audit.events import CATEGORIES, EVENTS, render_sentence
from orgs.services import org_update
from tests.audit import coverage


def test_recorded_actions_are_collected(org_setup):
    org_update(actor=org_setup.owner, org=org_setup.org, name="Acme Renamed")
    assert {"org.created", "workspace.linked", "org.updated"} <= coverage.PRODUCED
    assert set(coverage.missing_actions()) <= set(EVENTS)


def test_every_registered_action_renders_a_sentence_without_placeholders():
    from audit.models import AuditEvent

    for action in EVENTS:
        event = AuditEvent(action=action, actor_label="Bob", target_label="T", details={})
        sentence = render_sentence(event)
        assert sentence and "{" not in sentence, action
    assert sorted({a.split(".")[0] for a in EVENTS}) == CATEGORIES


def test_sentences_name_the_workspace_once():
    from audit.models import AuditEvent

    created = AuditEvent(
        action="workspace.created",
        actor_label="Olivia Owner",
        target_type="workspace",
        target_label="Production",
        workspace_label="Production",
    )
    assert render_sentence(created) == "Olivia Owner created the workspace Production"
    policy = AuditEvent(
        action="governance.policy_updated",
        actor_label="Bob Admin",
        actor_type="token",
        target_label="allowed domains",
        workspace_label="Production",
    )
    assert render_sentence(policy) == (
        "Bob Admin (API token) changed the policy allowed domains in Production"
    )
