from celery import shared_task

from support.emails import send_support_message


@shared_task(autoretry_for=(OSError,), retry_backoff=30, retry_backoff_max=3600, max_retries=8)
def send_support_email(to: str, template: str, context: dict) -> None:
    send_support_message(to=to, template=template, context=context)
