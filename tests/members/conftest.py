import pytest

from config.roles import Role
from members.invitations import member_invite


@pytest.fixture
def invite(django_capture_on_commit_callbacks):
    """invite(actor, org, *emails, role=, grants=) → invitations (emails sent eagerly, locmem)."""

    def _invite(actor, org, *emails, role=Role.MEMBER, grants=None):
        with django_capture_on_commit_callbacks(execute=True):
            return member_invite(
                actor=actor, org=org, emails=list(emails), org_role=role, grants=grants or {}
            )

    return _invite
