"""Account writes: sign-up (account + first workspace)."""

from django.db import transaction

from members.models import User
from workspaces.services import workspace_create


@transaction.atomic
def account_signup(
    *,
    email: str,
    password: str,
    full_name: str,
    workspace_name: str | None = None,
    create_workspace: bool = True,
) -> User:
    """Create the account and, unless joining through an invitation, a first workspace it owns."""
    user = User.objects.create_user(email=email, password=password, full_name=full_name.strip())
    if create_workspace:
        workspace_create(
            actor=user, name=(workspace_name or "").strip() or f"{user.display_name}'s workspace"
        )
    return user
