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
