"""Account › Profile: the display name, validated, audited in every org log the person is in."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from members.account_services import profile_update
from tests.factories import UserFactory


def test_rename_shows_in_directory_menu_and_new_audit_events(org_setup, login):
    client = login(org_setup.member)
    response = client.post(reverse("account:profile"), {"full_name": "  Carol   Newname "})
    assert response.status_code == 302
    org_setup.member.refresh_from_db()
    assert org_setup.member.full_name == "Carol Newname"
    event = AuditEvent.objects.get(action="account.profile_updated")
    assert event.organization == org_setup.org
    assert event.actor_label == "Carol Newname"
    assert event.details == {"from_name": "Carol Member", "to_name": "Carol Newname"}
    page = client.get(reverse("account:home")).content.decode()
    assert "Carol Newname ▾" in page  # the account menu
    directory = login(org_setup.owner).get(
        reverse("org_members:directory", args=[org_setup.org.slug])
    )
    assert "Carol Newname" in directory.content.decode()
    assert "Carol Member" not in directory.content.decode()


def test_one_event_per_org_log_or_own_log_without_orgs(org_setup):
    loner = UserFactory(full_name="Lone Ranger")
    profile_update(actor=loner, full_name="Lone Wolf")
    assert list(
        AuditEvent.objects.filter(action="account.profile_updated").values_list(
            "organization_id", "chain_key"
        )
    ) == [(None, 0)]


def test_unchanged_name_records_nothing(org_setup):
    profile_update(actor=org_setup.member, full_name="Carol Member")
    assert not AuditEvent.objects.filter(action="account.profile_updated").exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "This field is required"),
        ("   ", "This field is required"),
        ("x" * 151, "at most 150 characters"),
        ("Bad\x00Name", "NUL character"),
        ("Bell\x07", "control characters"),
        ("Right\u202eleft", "control characters"),
    ],
)
def test_bad_names_are_refused_and_nothing_changes(org_setup, login, value, message):
    client = login(org_setup.member)
    response = client.post(reverse("account:profile"), {"full_name": value})
    # A NUL character is refused before any view reads it (config/middleware.py): 400.
    assert response.status_code == (400 if "\x00" in value else 422)
    assert message in response.content.decode()
    org_setup.member.refresh_from_db()
    assert org_setup.member.full_name == "Carol Member"
    assert not AuditEvent.objects.filter(action="account.profile_updated").exists()


def test_account_pages_need_sign_in(client, db):
    response = client.get(reverse("account:home"))
    assert response.status_code == 302 and "/signin/" in response["Location"]
    assert client.post(reverse("account:profile"), {"full_name": "X"}).status_code == 302


def test_profile_is_post_only(org_setup, login):
    assert login(org_setup.member).get(reverse("account:profile")).status_code == 405
