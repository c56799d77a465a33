"""Settings shared by every environment; everything that differs between machines comes from the env."""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["127.0.0.1", "localhost", "testserver"]),
    SITE_URL=(str, "http://127.0.0.1:8000"),
    AUDIT_RETENTION_DAYS=(int, 0),
)
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key-change-me")
# Earlier keys, still accepted for signatures and sealed SSO secrets after a rotation.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
DEBUG = env("DEBUG")
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
SITE_URL = env("SITE_URL").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "ninja",  # its static files serve /api/v1/docs (Swagger UI) without a CDN
    "csp",
    "members",
    "workspaces",
    "orgs",
    "orgs.scim",  # SCIM 2.0 provisioning (label "scim")
    "audit",
    "billing",
    "reviews",  # access reviews (issue 17)
    "bench",  # `manage.py bench`: the benchmark, apart from the product's apps
    "axes",  # sign-in throttling (members/auth.py)
    "support",  # last: its admin re-registers some of the others' with support actions
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # first, so every response carries the policy
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Marks clients that wrote, who then read the primary (no-op without a replica).
    "config.dbrouter.ReadYourWritesMiddleware",
    "members.activity.LastActiveMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "members.sessions.SessionActivityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Before any view (and CSRF's process_view) reads the body: 413 and NUL refusals.
    "config.middleware.HostileInputMiddleware",
    "config.middleware.RequestContextMiddleware",
    "config.middleware.DomainErrorMiddleware",
    "config.middleware.MethodNotAllowedPageMiddleware",
    "config.dbdown.DatabaseUnavailableMiddleware",
    # Last, as django-axes requires: turns a sign-in lock into its response.
    "axes.middleware.AxesMiddleware",
]

# The largest request body (bytes) a page or the API accepts; larger ones get a 413
# (config.middleware.HostileInputMiddleware). A 1,000-address bulk invite is ~50 KB.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=2 * 1024 * 1024)

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "workspaces.context_processors.workspace_switcher",
            ],
            # {% partialdef %} in every template without {% load partials %}.
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout so the dev server and in-process tasks do not trip over each other.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Scaling out (README "Topology"). DATABASE_POOLER=pgbouncer: the URLs point at PgBouncer in
# transaction pooling, so no server-side cursors (a cursor would outlive its transaction's
# server connection); Django's psycopg backend already prepares no statements.
DATABASE_POOLER = env("DATABASE_POOLER", default="")
# A streaming read replica: read-only pages and API lists read from it (config/dbrouter.py).
REPLICA_DATABASE_URL = env("REPLICA_DATABASE_URL", default="")
if REPLICA_DATABASE_URL:
    DATABASES["replica"] = env.db_url_config(REPLICA_DATABASE_URL)
    DATABASES["replica"].update(
        ATOMIC_REQUESTS=False,
        CONN_MAX_AGE=DATABASES["default"].get("CONN_MAX_AGE", 60),
        CONN_HEALTH_CHECKS=True,
        OPTIONS={"connect_timeout": 2},
        # Tests read the primary's test database on the replica (streamed there).
        TEST={"MIRROR": "default"},
    )
if DATABASE_POOLER == "pgbouncer":
    for _alias in DATABASES.values():
        _alias["DISABLE_SERVER_SIDE_CURSORS"] = True
DATABASE_ROUTERS = ["config.dbrouter.PrimaryReplicaRouter"] if "replica" in DATABASES else []
REPLICA_READS = "replica" in DATABASES
# A client that wrote reads from the primary this long; a replica further behind than the bound
# (or down) is not used; its health is checked at most every REPLICA_HEALTH_SECONDS per process.
# Keep READ_YOUR_WRITES_SECONDS above REPLICA_MAX_LAG_SECONDS.
READ_YOUR_WRITES_SECONDS = env.int("READ_YOUR_WRITES_SECONDS", default=10)
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=5.0)
REPLICA_HEALTH_SECONDS = env.float("REPLICA_HEALTH_SECONDS", default=2.0)
# Where the health check connects (libpq URL): the replica server itself when the replica alias
# goes through a pooler; empty = through the replica alias.
REPLICA_CHECK_URL = env("REPLICA_CHECK_URL", default="")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "members.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked (account, client) first
    "members.backends.EmailBackend",
]
LOGIN_URL = "members:signin"
LOGIN_REDIRECT_URL = "workspaces:home"
LOGOUT_REDIRECT_URL = "members:signin"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# Redis backs the cache (rate limits, sign-in throttling, last-active throttling) and Celery.
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="ss"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# Without a broker the tasks run in-process, right after the transaction commits.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5}
CELERY_BEAT_SCHEDULE = {
    # Each issue adds its periodic work here, so the whole schedule is visible in one place.
    "resend-undelivered-invitations": {
        "task": "members.tasks.resend_undelivered_invitations",
        "schedule": 60.0,
    },
    "rollup-usage": {"task": "billing.tasks.rollup_usage", "schedule": 300.0},
    "verify-audit-chains": {
        "task": "audit.tasks.verify_audit_chains",
        "schedule": crontab(minute=15),
    },
    "close-monthly-invoices": {
        "task": "billing.tasks.close_monthly_invoices",
        "schedule": crontab(day_of_month=1, hour=2, minute=0),
    },
    # Access reviews: reminders before the due date, completion at it (reviews/tasks.py).
    "access-reviews": {"task": "reviews.tasks.access_reviews_tick", "schedule": 900.0},
    "deliver-audit-streams": {"task": "audit.tasks.deliver_audit_streams", "schedule": 30.0},
    "prune-audit-stream-log": {
        "task": "audit.tasks.prune_audit_stream_log",
        "schedule": crontab(hour=3, minute=45),
    },
    "prune-audit-events": {
        "task": "audit.tasks.prune_audit_events",
        "schedule": crontab(hour=3, minute=30),
    },
    # SAML IdP metadata configured by URL is fetched again (orgs/sso/metadata.py).
    "refresh-saml-metadata": {
        "task": "orgs.tasks.refresh_saml_metadata",
        "schedule": crontab(hour=4, minute=10),
    },
    # The audit events' monthly partitions, created two months ahead (audit/retention.py).
    "ensure-audit-partitions": {
        "task": "audit.tasks.ensure_audit_partitions",
        "schedule": crontab(hour=3, minute=20),
    },
}

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="SignalSmith <no-reply@signalsmith.test>")
EMAIL_TIMEOUT = 10

AUDIT_RETENTION_DAYS = env("AUDIT_RETENTION_DAYS")  # 0 = keep forever
AUDIT_ARCHIVE_DIR = Path(env("AUDIT_ARCHIVE_DIR", default=str(BASE_DIR / "var" / "audit-archive")))
# PostgreSQL: the application's runtime role, if it is not the (superuser) role that runs the
# migrations; the audit migrations grant it the audit writer role (audit/dbsecurity.py).
AUDIT_DB_APP_ROLE = env("AUDIT_DB_APP_ROLE", default="")
# Signed chain checkpoints (audit/checkpoints.py): the HMAC key (SECRET_KEY if empty; keep it
# stable) and how often record() signs one (every N events per chain; 0 = only the hourly
# verification).
AUDIT_CHECKPOINT_KEY = env("AUDIT_CHECKPOINT_KEY", default="")
AUDIT_CHECKPOINT_EVERY = env.int("AUDIT_CHECKPOINT_EVERY", default=1000)
# Audit streaming (audit/streaming.py): webhook destinations must be https:// unless this
# allows plain http:// to a loopback address (development and tests only).
AUDIT_STREAM_ALLOW_HTTP = env.bool("AUDIT_STREAM_ALLOW_HTTP", default=False)
AUDIT_STREAM_TIMEOUT_SECONDS = env.float("AUDIT_STREAM_TIMEOUT_SECONDS", default=10.0)
# Retry backoff after a failed delivery: base doubling per attempt, capped; a destination that
# has failed continuously this many hours is disabled and its org's owners are emailed.
AUDIT_STREAM_RETRY_BASE_SECONDS = env.float("AUDIT_STREAM_RETRY_BASE_SECONDS", default=10.0)
AUDIT_STREAM_RETRY_MAX_SECONDS = env.float("AUDIT_STREAM_RETRY_MAX_SECONDS", default=1800.0)
AUDIT_STREAM_DISABLE_AFTER_HOURS = env.float("AUDIT_STREAM_DISABLE_AFTER_HOURS", default=24.0)
# Delivered outbox rows (the page's delivery log) are kept this many days; pending ones always.
AUDIT_STREAM_LOG_DAYS = env.int("AUDIT_STREAM_LOG_DAYS", default=30)

# Enterprise identity (orgs/sso/): the DNS servers that verify domain TXT records (empty = the
# system's resolver) and their port; the SAML signing tool (Debian's xmlsec1) and the SP key
# pair (PEM files; generated into var/sso/ on first use when unset). See README.
SSO_DNS_NAMESERVERS = env.list("SSO_DNS_NAMESERVERS", default=[])
SSO_DNS_PORT = env.int("SSO_DNS_PORT", default=53)
SSO_DNS_TIMEOUT = env.float("SSO_DNS_TIMEOUT", default=5.0)
SAML_XMLSEC_BINARY = env("SAML_XMLSEC_BINARY", default="/usr/bin/xmlsec1")
SAML_SP_KEY_FILE = env("SAML_SP_KEY_FILE", default="")
SAML_SP_CERT_FILE = env("SAML_SP_CERT_FILE", default="")
SAML_SP_KEY_DIR = Path(env("SAML_SP_KEY_DIR", default=str(BASE_DIR / "var" / "sso")))
# IdP metadata by URL: https only, and never an address inside our own network, unless this is
# on (tests serve an IdP on loopback over plain http).
SSO_METADATA_ALLOW_PRIVATE = env.bool("SSO_METADATA_ALLOW_PRIVATE", default=False)
# The key that seals OIDC client secrets at rest (orgs/sso/sealed.py); SECRET_KEY if empty.
SSO_SEAL_KEY = env("SSO_SEAL_KEY", default="")
# Seconds we wait for an OpenID provider (discovery, token endpoint, keys).
SSO_OIDC_TIMEOUT = env.float("SSO_OIDC_TIMEOUT", default=10.0)

# How often (seconds) a person's Last Active timestamp may be written.
LAST_ACTIVE_THROTTLE_SECONDS = 300
INVITATION_TTL_DAYS = 7
EMAIL_VERIFICATION_TTL_HOURS = 48
INVITES_PER_ORG_PER_DAY = 100
INVITES_PER_INVITER_PER_HOUR = 50

# Client address: how many reverse proxies in front of the app append to X-Forwarded-For
# (0 = use REMOTE_ADDR and ignore the header, which a client can write). See README.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Sign-in throttling (django-axes, members/auth.py): wrong passwords lock one (account, client)
# pair; one client over many accounts has a far higher limit; every lock lifts after the
# cool-off, and trying during a lock does not extend it.
AXES_HANDLER = "members.auth.SignInThrottle"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env.int("SIGNIN_FAILURES_PER_ACCOUNT", default=5)
SIGNIN_FAILURES_PER_CLIENT = env.int("SIGNIN_FAILURES_PER_CLIENT", default=50)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("SIGNIN_COOLOFF_MINUTES", default=15))
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "members.auth.signin_username"
AXES_CLIENT_IP_CALLABLE = "config.middleware.client_ip"
AXES_LOCKOUT_CALLABLE = "members.auth.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # failures only: successful sign-ins are not logged twice
AXES_SENSITIVE_PARAMETERS = ["username", "email", "ip_address"]
AXES_VERBOSE = False
# Emails sent to an address the requester types: (per client, per target email) per hour.
ACCOUNT_EMAIL_LIMITS_PER_HOUR = {
    "password_reset": (
        env.int("PASSWORD_RESETS_PER_CLIENT_PER_HOUR", default=20),
        env.int("PASSWORD_RESETS_PER_EMAIL_PER_HOUR", default=5),
    ),
    "signup": (
        env.int("SIGNUPS_PER_CLIENT_PER_HOUR", default=10),
        env.int("SIGNUPS_PER_EMAIL_PER_HOUR", default=5),
    ),
    "verification": (20, 5),  # "send the confirmation link again"
}
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=600)

# Card payments (billing/providers.py): a dotted path to a PaymentProvider. The default test
# provider accepts well-known test card numbers; production refuses it unless
# ALLOW_TEST_PAYMENT_PROVIDER=1 (config/settings/production.py).
TEST_PAYMENT_PROVIDER = "billing.providers.TestProvider"
BILLING_PAYMENT_PROVIDER = env("BILLING_PAYMENT_PROVIDER", default=TEST_PAYMENT_PROVIDER)
# Inviting and resending through the API, per token (on top of the per-org/inviter limits).
API_INVITE_RATE_LIMIT_PER_MINUTE = env.int("API_INVITE_RATE_LIMIT_PER_MINUTE", default=30)

# A signed-in session without activity for this long is signed out (an admin console).
# Sessions are read from the cache (Redis; in-process without REDIS_URL) and written through
# to the database: one query less on every signed-in request, and a flushed cache loses none.
# Ending a session deletes both (members/sessions.py, support/services.py).
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_IDLE_TIMEOUT_MINUTES = env.int("SESSION_IDLE_TIMEOUT_MINUTES", default=120)
# Last-seen of a session is written at most this often (capped at a quarter of the idle time).
SESSION_TOUCH_SECONDS = env.int("SESSION_TOUCH_SECONDS", default=300)
# How long an email-change link stays valid.
EMAIL_CHANGE_TTL_HOURS = 24

# Content-Security-Policy on every response (django-csp): scripts, styles, images and requests
# only from this origin; no inline script or style (templates use static CSS/JS, htmx's
# indicator styles are in app.css), no plugins, no framing, forms post only here.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
}
