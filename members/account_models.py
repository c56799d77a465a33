"""Account self-service data: signed-in sessions (devices) and pending email changes.

Imported by members/models.py so Django sees them as models of the members app.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from config.ids import PublicIdField


class UserSession(models.Model):
    """One signed-in browser session: what the sessions list shows and what "sign out" ends.

    Keyed by the Django session key; last_seen_at is written at most once per
    SESSION_TOUCH_SECONDS (members/sessions.py), not on every request.
    """

    public_id = PublicIdField(prefix="ses")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="browser_sessions"
    )
    session_key = models.CharField(max_length=40, unique=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["user", "-last_seen_at"])]

    def __str__(self):
        return f"Session of {self.user} from {self.ip or 'unknown address'}"


class EmailChange(models.Model):
    """A requested change of sign-in email, waiting for the link mailed to the new address."""

    public_id = PublicIdField(prefix="emc")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_changes"
    )
    old_email = models.EmailField(max_length=254)
    new_email = models.EmailField(max_length=254)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # At most one open request per person: a new request replaces the previous one.
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(confirmed_at__isnull=True, cancelled_at__isnull=True),
                name="one_open_email_change",
            )
        ]

    def __str__(self):
        return f"Email change of {self.user} to {self.new_email}"
