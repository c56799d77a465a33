"""`manage.py create_api_token EMAIL [--name NAME] [--expires-days N]`: print a new API token."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from config.errors import DomainError
from members.models import User, normalize_email
from members.tokens import token_create


class Command(BaseCommand):
    help = "Create a personal API token for the account with EMAIL and print it (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--name", default="Created from the command line")
        parser.add_argument("--expires-days", type=int, default=None)

    def handle(self, *args, email, name, expires_days, **options):
        user = User.objects.filter(email=normalize_email(email), is_active=True).first()
        if user is None:
            raise CommandError(f"No active account uses {email}.")
        expires_at = None
        if expires_days is not None:
            if expires_days < 1:
                raise CommandError("--expires-days must be at least 1.")
            expires_at = timezone.now() + timedelta(days=expires_days)
        try:
            token, raw = token_create(actor=user, name=name, expires_at=expires_at)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(f"Token {token.name} ({token.public_id}) for {user.email}:")
        self.stdout.write(raw)
