"""Beat: remind reviewers before an access review's due date; complete it at the due date."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from config.errors import DomainError
from reviews import services
from reviews.models import AccessReview, AccessReviewer
from reviews.selectors import items_for_reviewer

log = logging.getLogger(__name__)


def send_reminders(now=None) -> int:
    """Email each reviewer who still has undecided grants, once per review; returns emails sent."""
    sent = 0
    for review in services.reviews_to_remind(now):
        with transaction.atomic():
            locked = AccessReview.objects.select_for_update().get(pk=review.pk)
            if locked.reminded_at is not None:
                continue  # another worker got there first
            user_ids = set(
                AccessReviewer.objects.filter(review=review).values_list("user_id", flat=True)
            )
            reviewers = AccessReviewer.objects.filter(review=review).select_related("user")
            for user in {r.user for r in reviewers if r.user_id in user_ids}:
                left = items_for_reviewer(review, user).filter(decision="").count()
                if not left:
                    continue
                url = settings.SITE_URL + reverse(
                    "reviews:detail", args=[review.organization.slug, review.public_id]
                )
                send_mail(
                    subject=f"Reminder: {left} grants to review in {review.name}",
                    message=(
                        f"Hello {user.display_name},\n\n{left} grants in the access review "
                        f"{review.name} of {review.organization.name} wait for your decision. "
                        f"It is due on {review.due_at:%b %d, %Y %H:%M} UTC; grants not reviewed "
                        f"by then are {'kept' if review.unreviewed == 'keep' else 'revoked'}.\n\n"
                        f"{url}\n"
                    ),
                    from_email=settings.DEFAULT_FROM_EMAIL,
                    recipient_list=[user.email],
                )
                sent += 1
            locked.reminded_at = timezone.now()
            locked.save(update_fields=["reminded_at"])
    return sent


def complete_due(now=None) -> int:
    done = 0
    for review in services.reviews_due(now):
        try:
            services.review_complete(org=review.organization, review=review)
            done += 1
        except DomainError as exc:  # finished meanwhile, or the org was deleted
            log.info("access review %s not completed: %s", review.public_id, exc.message)
    return done


@shared_task(ignore_result=True)
def access_reviews_tick() -> dict:
    """Idempotent: a review is reminded once and completed once."""
    return {"reminded": send_reminders(), "completed": complete_due()}
