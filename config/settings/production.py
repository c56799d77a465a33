"""Production: refuses to start without a real secret key, or with the test payment provider
unless explicitly allowed; passes `manage.py check --deploy`."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import BILLING_PAYMENT_PROVIDER, SECRET_KEY, TEST_PAYMENT_PROVIDER, env

DEBUG = False
if not SECRET_KEY or SECRET_KEY.startswith("dev-only") or len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("Set SECRET_KEY to a random string of at least 50 characters.")
# The test provider takes test card numbers as real cards: a production deployment must name a
# real provider, or say on purpose that it runs with the test one (a staging or demo site).
ALLOW_TEST_PAYMENT_PROVIDER = env.bool("ALLOW_TEST_PAYMENT_PROVIDER", default=False)
if BILLING_PAYMENT_PROVIDER == TEST_PAYMENT_PROVIDER and not ALLOW_TEST_PAYMENT_PROVIDER:
    raise ImproperlyConfigured(
        f"BILLING_PAYMENT_PROVIDER is the test provider ({TEST_PAYMENT_PROVIDER}), which accepts "
        "test card numbers. Set BILLING_PAYMENT_PROVIDER to a real provider, or set "
        "ALLOW_TEST_PAYMENT_PROVIDER=1 for a staging or demo deployment."
    )

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
