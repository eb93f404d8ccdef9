"""Settings shared by every environment.

Everything that differs between machines is read from the environment with django-environ,
parsed strictly: a malformed value stops start-up with a message naming the variable.
``<NAME>_FILE`` may point at a file that holds a secret (Docker/Kubernetes secrets).
With no variables at all this is the embedded default: SQLite, in-memory channel layer,
a filesystem Celery broker, the local mail outbox and files on local disk.
"""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("MEDIMEET_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()


def env_secret(name: str, default: str | None = None) -> str | None:
    """Read ``NAME`` or the file named by ``NAME_FILE``; ``None`` when neither is set."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE points at {path!r}, which cannot be read: {exc}")
    return os.environ.get(name, default)


def env_list(name: str, default: list[str]) -> list[str]:
    return [item.strip() for item in env.list(name, default=default) if item.strip()]


# --- Core ---------------------------------------------------------------------------------

DEBUG = env.bool("DEBUG", default=False)
# The embedded default gets a fixed development key; production.py refuses to start without one.
SECRET_KEY = env_secret("SECRET_KEY") or "dev-insecure-medimeet-key-only-for-the-embedded-default"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
SITE_NAME = "MediMeet"
SITE_ID = 1
# Behind a reverse proxy that sets X-Forwarded-For (docs/deployment.md), use its first hop.
USE_X_FORWARDED_FOR = env.bool("USE_X_FORWARDED_FOR", default=False)

INSTALLED_APPS = [
    "daphne",
    "medimeet.core.apps.MedimeetAdminConfig",  # django.contrib.admin with the audited site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.humanize",
    "django.contrib.sitemaps",
    "django.contrib.postgres",
    # Third party
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "csp",
    "channels",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.facebook",
    "allauth.mfa",
    "allauth.usersessions",
    # Feature flags and platform settings (see "Feature flags and platform settings" below).
    "waffle",
    "medimeet.core.apps.PlatformSettingsConfig",  # django-constance, named "Platform settings" in the admin
    # MediMeet: cross-cutting platform pieces, then one app per domain.
    "medimeet.core",
    "accounts",
    "doctors",
    "appointments",
    "payments",
    "consultations",
    "reviews",
    "records",
    "cms",
]

MIDDLEWARE = [
    "medimeet.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "medimeet.core.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.SessionPolicyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
    "medimeet.core.middleware.RateLimitHeadersMiddleware",
    # Feature flags: writes waffle's cookie that keeps a percentage rollout's answer per browser.
    "waffle.middleware.WaffleMiddleware",
]

ROOT_URLCONF = "medimeet.urls"
WSGI_APPLICATION = "medimeet.wsgi.application"
ASGI_APPLICATION = "medimeet.asgi.application"

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
                "csp.context_processors.nonce",
                "medimeet.core.context_processors.site",
            ],
        },
    },
]

# --- Data ---------------------------------------------------------------------------------

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default has the web server and the Celery worker writing one file:
    # take the write lock at BEGIN and wait for it rather than failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    # Parameters bound by the server, and statements a connection has run DB_PREPARE_THRESHOLD
    # times prepared on it (psycopg): PostgreSQL stops parsing and planning the same ORM queries
    # on every request, and psycopg stops quoting parameters into the SQL text. Behind a
    # PgBouncer in transaction mode without max_prepared_statements, set DB_PREPARED_STATEMENTS=false.
    if env.bool("DB_PREPARED_STATEMENTS", default=True):
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            {"server_side_binding": True, "prepare_threshold": env.int("DB_PREPARE_THRESHOLD", default=5)}
        )
    if env.bool("DB_POOL", default=True):
        # Under ASGI every request runs in a new context, so persistent connections are not
        # reused; psycopg's pool (Django 5.1+) hands a warm connection to each request instead.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
            "timeout": env.int("DB_POOL_TIMEOUT_SECONDS", default=10),
        }
    else:
        DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
        DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "medimeet.core.cache.SharedPoolRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="medimeet"),
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            # The pub/sub layer: a group send is one PUBLISH and Redis pushes it to the
            # subscribed processes. The list-based RedisChannelLayer made four round trips per
            # send plus a blocking pop loop per process, and twice the server CPU per relayed
            # frame (docs/performance.md, signaling). What it queued for a process that was
            # briefly cut off from Redis, pub/sub drops: the pages read the state again when
            # they reconnect, and relayed frames are useless late (docs/architecture.md).
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                # redis-py 8 raises instead of waiting when its pool is full (see
                # ../shared/NOTES.md); the pub/sub layer takes one connection per process for
                # publishing and one for its subscriptions, so this is a bound, not a need.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": env.int("CHANNELS_REDIS_MAX_CONNECTIONS", default=1000),
                        "socket_timeout": env.int("CHANNELS_REDIS_SOCKET_TIMEOUT_SECONDS", default=15),
                    }
                ],
                "prefix": "medimeet:channels",
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "medimeet"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

SESSION_ENGINE = "medimeet.core.sessions"  # cached_db; a database outage while saving is a 503, not a 400

# --- Celery -------------------------------------------------------------------------------
# Production: Redis broker. Embedded default: Kombu's filesystem transport under var/, so
# `make run` starts a real worker with beat and no server (see docs/architecture.md).
CELERY_BROKER_DIR = VAR_DIR / "celery-broker"
if REDIS_URL:
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
    # A message taken by a worker that died without acknowledging it (acks_late) is given to
    # another worker after this long (scripts/fault-celery-worker shortens it to show it).
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_SECONDS", default=3600)}
else:
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost//")
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the message for another run
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict = {
    "release-expired-holds": {
        "task": "appointments.tasks.release_expired_holds",
        "schedule": timedelta(minutes=1),
    },
    "send-due-reminders": {
        "task": "appointments.tasks.send_due_reminders",
        "schedule": timedelta(minutes=1),
    },
    "refresh-next-available": {
        "task": "appointments.tasks.refresh_next_available",
        "schedule": timedelta(minutes=10),
    },
    "flag-expired-licences": {
        "task": "doctors.tasks.flag_expired_licences",
        "schedule": crontab(hour=2, minute=0),
    },
    "settle-consultation-no-shows": {
        "task": "consultations.tasks.settle_no_shows",
        "schedule": timedelta(minutes=1),
    },
    "announce-consultation-rooms": {
        "task": "consultations.tasks.announce_opening",
        "schedule": timedelta(minutes=1),
    },
    "purge-consultation-recordings": {
        "task": "consultations.tasks.purge_recordings",
        "schedule": timedelta(hours=1),
    },
    "requeue-stalled-notifications": {  # tasks lost while the broker was down, or by a killed worker
        "task": "medimeet.core.tasks.requeue_stalled_notifications",
        "schedule": timedelta(minutes=1),
    },
    "void-lapsed-payments": {
        "task": "payments.tasks.void_lapsed_payments",
        "schedule": timedelta(minutes=1),
    },
    "retry-failed-refunds": {
        "task": "payments.tasks.retry_failed_refunds",
        "schedule": timedelta(minutes=5),
    },
    "renew-subscriptions": {  # sandbox care plans: renewals and dunning retries
        "task": "payments.tasks.renew_subscriptions",
        "schedule": timedelta(minutes=15),
    },
    "retry-webhook-events": {
        "task": "payments.tasks.retry_webhook_events",
        "schedule": timedelta(minutes=5),
    },
    "request-reviews": {
        "task": "reviews.tasks.request_reviews",
        "schedule": timedelta(hours=1),
    },
    "recompute-ratings": {  # re-estimates the platform prior and recency decay (docs/ratings.md)
        "task": "reviews.tasks.recompute_all_ratings",
        "schedule": crontab(hour=3, minute=30),
    },
    "purge-records-past-retention": {
        "task": "records.tasks.purge_past_retention",
        "schedule": crontab(hour=3, minute=30),
    },
    "publish-due-content": {
        "task": "cms.tasks.publish_due",
        "schedule": timedelta(minutes=1),
    },
    "purge-expired-api-sessions": {
        "task": "accounts.tasks.purge_expired_api_sessions",
        "schedule": timedelta(hours=6),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Auth ---------------------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
# Argon2id for every new or re-hashed password; Django re-hashes a PBKDF2/bcrypt hash with the
# first hasher when its owner next signs in (the others stay only to verify old hashes).
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT_SECONDS", default=60 * 60)
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "accounts:dashboard"

ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.SignupDetailsForm"
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[MediMeet] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if SITE_URL.startswith("https") else "http"
ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = env.int("EMAIL_CONFIRMATION_EXPIRE_DAYS", default=3)
# Shared by the web form and the API login (both go through the allauth adapter): after
# LOGIN_LOCKOUT_ATTEMPTS failures for one email the account is locked for the timeout.
LOGIN_LOCKOUT_ATTEMPTS = env.int("LOGIN_LOCKOUT_ATTEMPTS", default=5)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=15 * 60)
# allauth counts an attempt before the password check and refunds it on success, so the per-IP
# part also caps concurrent sign-ins from one address (a clinic behind one NAT): keep it generous.
LOGIN_ATTEMPTS_PER_IP_PER_MINUTE = env.int("LOGIN_ATTEMPTS_PER_IP_PER_MINUTE", default=300)
ACCOUNT_RATE_LIMITS = {"login_failed": f"{LOGIN_ATTEMPTS_PER_IP_PER_MINUTE}/m/ip,{LOGIN_LOCKOUT_ATTEMPTS}/{LOGIN_LOCKOUT_SECONDS}s/key"}
ACCOUNT_SESSION_REMEMBER = False

MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = SITE_NAME
MFA_REQUIRED_FOR_STAFF = True
MFA_REQUIRED_FOR_DOCTORS = env.bool("MFA_REQUIRED_FOR_DOCTORS", default=False)

USERSESSIONS_TRACK_ACTIVITY = True

GOOGLE_CLIENT_ID = env_secret("GOOGLE_CLIENT_ID") or ""
GOOGLE_CLIENT_SECRET = env_secret("GOOGLE_CLIENT_SECRET") or ""
FACEBOOK_APP_ID = env_secret("FACEBOOK_APP_ID") or ""
FACEBOOK_APP_SECRET = env_secret("FACEBOOK_APP_SECRET") or ""
SOCIALACCOUNT_PROVIDERS: dict = {}
if GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET:
    SOCIALACCOUNT_PROVIDERS["google"] = {
        "APPS": [{"client_id": GOOGLE_CLIENT_ID, "secret": GOOGLE_CLIENT_SECRET}],
        "SCOPE": ["profile", "email"],
        "AUTH_PARAMS": {"access_type": "online"},
    }
if FACEBOOK_APP_ID and FACEBOOK_APP_SECRET:
    SOCIALACCOUNT_PROVIDERS["facebook"] = {
        "APPS": [{"client_id": FACEBOOK_APP_ID, "secret": FACEBOOK_APP_SECRET}],
        "SCOPE": ["email", "public_profile"],
        "METHOD": "oauth2",
    }
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_LOGIN_ON_GET = False

# Web sessions: idle log-off and an absolute lifetime, enforced by SessionTimeoutMiddleware.
SESSION_IDLE_TIMEOUT = env.int("SESSION_IDLE_TIMEOUT_SECONDS", default=30 * 60)
SESSION_ABSOLUTE_LIFETIME = env.int("SESSION_ABSOLUTE_LIFETIME_SECONDS", default=12 * 60 * 60)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_LIFETIME
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# --- API ----------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.tokens.SessionBoundJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "medimeet.core.api.StandardPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "medimeet.core.errors.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "medimeet.core.api.AnonRateThrottle",
        "medimeet.core.api.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON", default="120/min"),
        "user": env.str("THROTTLE_USER", default="600/min"),
        "login": env.str("THROTTLE_LOGIN", default="10/min"),
        "register": env.str("THROTTLE_REGISTER", default="10/hour"),
        "password_reset": env.str("THROTTLE_PASSWORD_RESET", default="5/hour"),
        # Holds and series bookings (API and the booking page): a person cannot sit on a doctor's calendar.
        "booking": env.str("THROTTLE_BOOKING", default="20/min"),
        # The public receipt and prescription verification pages: no guessing codes in bulk.
        "verify": env.str("THROTTLE_VERIFY", default="30/min"),
        # The public signed-document verifier (page and API): each check parses an uploaded PDF.
        "document_verify": env.str("THROTTLE_DOCUMENT_VERIFY", default="20/min"),
    },
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_ACCESS_TOKEN_LIFETIME_SECONDS", default=5 * 60)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_REFRESH_TOKEN_LIFETIME_SECONDS", default=14 * 24 * 3600)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env_secret("JWT_SIGNING_KEY") or SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_CLAIM": "uid",
    "USER_ID_FIELD": "public_id",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "MediMeet API",
    "DESCRIPTION": (
        "Versioned REST API of MediMeet for mobile apps and integrations. Every error has the "
        'envelope {"error": {"code", "message", "fields"}} with a stable code; see docs/api.md.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "medimeet.core.api.document_generic_errors"],
    "ENUM_NAME_OVERRIDES": {
        "VerificationStatusEnum": "doctors.models.DoctorProfile.Status",
        "TransitionTargetEnum": "doctors.models.TRANSITION_TARGET_CHOICES",
        "DocumentKindEnum": "doctors.models.DoctorDocument.Kind",
        "SessionKindEnum": "accounts.api.SESSION_KINDS",
        "AccountStatusEnum": "accounts.models.User.Status",
        "AppointmentStatusEnum": "appointments.models.Appointment.Status",
        "AppointmentStatusChangeEnum": "appointments.api.STATUS_CHANGES",
    },
}

CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])
CORS_URLS_REGEX = r"^/api/.*$"

# --- Security headers ---------------------------------------------------------------------

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'", "ws:", "wss:"],
        "media-src": ["'self'", "blob:"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'", "https://accounts.google.com", "https://www.facebook.com"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Field-level encryption of PHI at rest: comma-separated Fernet keys, newest first (rotation).
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS", [])
if not FIELD_ENCRYPTION_KEYS and env_secret("FIELD_ENCRYPTION_KEYS"):
    FIELD_ENCRYPTION_KEYS = [k.strip() for k in env_secret("FIELD_ENCRYPTION_KEYS").split(",") if k.strip()]

# --- Email --------------------------------------------------------------------------------

EMAIL_URL = env_secret("EMAIL_URL")
if EMAIL_URL:
    vars().update(environ.Env.email_url_config(EMAIL_URL))
else:
    # Embedded default: every message is written to var/outbox/ and summarised on the console.
    EMAIL_BACKEND = "medimeet.core.mail.OutboxEmailBackend"
EMAIL_OUTBOX_DIR = VAR_DIR / "outbox"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="MediMeet <no-reply@medimeet.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = 10
# Notifications (medimeet/core/notifications): a failed hand-over is retried this many times,
# with exponential backoff from this many seconds, before the message is marked failed.
NOTIFICATION_MAX_RETRIES = env.int("NOTIFICATION_MAX_RETRIES", default=8)
NOTIFICATION_RETRY_BACKOFF_SECONDS = env.int("NOTIFICATION_RETRY_BACKOFF_SECONDS", default=30)
# A worker killed while sending leaves its row "sending": after this lease another run may send it.
NOTIFICATION_CLAIM_LEASE_SECONDS = env.int("NOTIFICATION_CLAIM_LEASE_SECONDS", default=900)
# A queued message whose task never reached the broker (Redis down at commit) is queued again by
# the requeue-stalled-notifications scan after this long.
NOTIFICATION_REQUEUE_AFTER_SECONDS = env.int("NOTIFICATION_REQUEUE_AFTER_SECONDS", default=120)

# --- Text messages (medimeet/core/sms.py) ------------------------------------------------------
# Twilio when its account is configured; otherwise the local outbox (var/sms-outbox/).
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env_secret("TWILIO_AUTH_TOKEN") or ""
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
if TWILIO_ACCOUNT_SID and not (TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER):
    raise ImproperlyConfigured("TWILIO_ACCOUNT_SID needs TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER.")
SMS_BACKEND = env.str("SMS_BACKEND", default="medimeet.core.sms.TwilioSmsBackend" if TWILIO_ACCOUNT_SID else "medimeet.core.sms.OutboxSmsBackend")
SMS_OUTBOX_DIR = VAR_DIR / "sms-outbox"
SMS_CODE_TTL_MINUTES = 10  # a phone verification code
SMS_CODE_RESEND_SECONDS = 60
SMS_CODE_MAX_ATTEMPTS = 5

# --- Files --------------------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if AWS_STORAGE_BUCKET_NAME:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "access_key": env_secret("AWS_ACCESS_KEY_ID"),
            "secret_key": env_secret("AWS_SECRET_ACCESS_KEY"),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default=None),
            "region_name": env.str("AWS_S3_REGION_NAME", default=None),
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
PROFILE_PICTURE_MAX_BYTES = env.int("PROFILE_PICTURE_MAX_BYTES", default=5 * 1024 * 1024)
DOCTOR_DOCUMENT_MAX_BYTES = env.int("DOCTOR_DOCUMENT_MAX_BYTES", default=10 * 1024 * 1024)
CMS_IMAGE_MAX_BYTES = env.int("CMS_IMAGE_MAX_BYTES", default=10 * 1024 * 1024)
DOCTOR_INVITATION_DAYS = env.int("DOCTOR_INVITATION_DAYS", default=7)
WAITLIST_OFFER_MINUTES = env.int("WAITLIST_OFFER_MINUTES", default=30)
# The booking page subscribes to /ws/doctors/<slug>/availability/ (docs/signaling.md, "Live
# availability"). Off where no websocket server answers /ws/ (a WSGI-only deployment): the page
# then works as before, without a socket that can only fail.
LIVE_AVAILABILITY_ON_PAGES = env.bool("LIVE_AVAILABILITY_ON_PAGES", default=True)

# --- Consultations (docs/signaling.md) ------------------------------------------------------
CONSULTATION_JOIN_BEFORE_MINUTES = env.int("CONSULTATION_JOIN_BEFORE_MINUTES", default=15)
CONSULTATION_GRACE_MINUTES = env.int("CONSULTATION_GRACE_MINUTES", default=30)
CONSULTATION_RECONNECT_SECONDS = env.int("CONSULTATION_RECONNECT_SECONDS", default=30)
CONSULTATION_NO_SHOW_MINUTES = env.int("CONSULTATION_NO_SHOW_MINUTES", default=15)
CONSULTATION_MAX_FRAME_BYTES = env.int("CONSULTATION_MAX_FRAME_BYTES", default=64 * 1024)
CONSULTATION_MAX_MESSAGES_PER_10S = env.int("CONSULTATION_MAX_MESSAGES_PER_10S", default=200)
# Recording (optional, with consent; docs/architecture.md). Chunks are read into memory and
# encrypted before they are stored: a chunk limit above FILE_UPLOAD_MAX_MEMORY_SIZE would let the
# ASGI handler spool the plaintext body to a temporary file, so it is refused at start-up.
CONSULTATION_RECORDING_RETENTION_DAYS = env.int("CONSULTATION_RECORDING_RETENTION_DAYS", default=30)
CONSULTATION_RECORDING_MAX_CHUNK_BYTES = env.int("CONSULTATION_RECORDING_MAX_CHUNK_BYTES", default=4 * 1024 * 1024)
CONSULTATION_RECORDING_MAX_BYTES = env.int("CONSULTATION_RECORDING_MAX_BYTES", default=1024 * 1024 * 1024)
CONSULTATION_RECORDING_LINK_MAX_MINUTES = env.int("CONSULTATION_RECORDING_LINK_MAX_MINUTES", default=24 * 60)
if CONSULTATION_RECORDING_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("CONSULTATION_RECORDING_RETENTION_DAYS must be at least 1.")
if not 0 < CONSULTATION_RECORDING_MAX_CHUNK_BYTES <= FILE_UPLOAD_MAX_MEMORY_SIZE:
    raise ImproperlyConfigured(f"CONSULTATION_RECORDING_MAX_CHUNK_BYTES must be between 1 and {FILE_UPLOAD_MAX_MEMORY_SIZE} (FILE_UPLOAD_MAX_MEMORY_SIZE).")
if CONSULTATION_RECORDING_MAX_BYTES < CONSULTATION_RECORDING_MAX_CHUNK_BYTES or CONSULTATION_RECORDING_LINK_MAX_MINUTES < 1:
    raise ImproperlyConfigured("CONSULTATION_RECORDING_MAX_BYTES must be at least one chunk and CONSULTATION_RECORDING_LINK_MAX_MINUTES at least 1.")
# --- Reviews and ratings (docs/ratings.md) ---------------------------------------------------
REVIEWS_WINDOW_DAYS = env.int("REVIEWS_WINDOW_DAYS", default=60)  # after the consultation ends
REVIEWS_EDIT_WINDOW_DAYS = env.int("REVIEWS_EDIT_WINDOW_DAYS", default=30)  # after submitting
REVIEWS_PHOTO_MAX_BYTES = env.int("REVIEWS_PHOTO_MAX_BYTES", default=5 * 1024 * 1024)
REVIEWS_MAX_PHOTOS = env.int("REVIEWS_MAX_PHOTOS", default=4)
REVIEWS_RATING_PRIOR_WEIGHT = env.float("REVIEWS_RATING_PRIOR_WEIGHT", default=5.0)
REVIEWS_RATING_HALF_LIFE_DAYS = env.float("REVIEWS_RATING_HALF_LIFE_DAYS", default=365.0)
REVIEWS_RATING_DEFAULT_MEAN = env.float("REVIEWS_RATING_DEFAULT_MEAN", default=4.0)
REVIEWS_SUSPECT_REJECTIONS = env.int("REVIEWS_SUSPECT_REJECTIONS", default=2)
if min(REVIEWS_WINDOW_DAYS, REVIEWS_EDIT_WINDOW_DAYS, REVIEWS_MAX_PHOTOS, REVIEWS_SUSPECT_REJECTIONS) < 1 or not 0 < REVIEWS_PHOTO_MAX_BYTES <= 20 * 1024 * 1024:
    raise ImproperlyConfigured("REVIEWS_WINDOW_DAYS, REVIEWS_EDIT_WINDOW_DAYS, REVIEWS_MAX_PHOTOS and REVIEWS_SUSPECT_REJECTIONS must be at least 1, REVIEWS_PHOTO_MAX_BYTES between 1 and 20 MiB.")
if REVIEWS_RATING_PRIOR_WEIGHT <= 0 or REVIEWS_RATING_HALF_LIFE_DAYS <= 0 or not 1 <= REVIEWS_RATING_DEFAULT_MEAN <= 5:
    raise ImproperlyConfigured("REVIEWS_RATING_PRIOR_WEIGHT and REVIEWS_RATING_HALF_LIFE_DAYS must be positive, REVIEWS_RATING_DEFAULT_MEAN between 1 and 5.")
# STUN/TURN for WebRTC: comma-separated URLs. With TURN_SECRET set, TURN credentials are
# time-limited (coturn's REST API scheme: username "<expiry>:<user>", HMAC-SHA1 password).
STUN_URLS = env_list("STUN_URLS", [])
TURN_URLS = env_list("TURN_URLS", [])
TURN_SECRET = env_secret("TURN_SECRET") or ""
TURN_CREDENTIAL_TTL_SECONDS = env.int("TURN_CREDENTIAL_TTL_SECONDS", default=6 * 3600)
# How long the slots proposed to patients whose doctor goes on vacation stay held for them.
VACATION_OFFER_HOURS = env.int("VACATION_OFFER_HOURS", default=48)

# --- Medical records (docs/architecture.md, Medical records) --------------------------------
# Master keys wrapping each document's data key: "id:<32 bytes base64url>", comma-separated,
# newest first. Rotate by prepending a key, running `manage.py records_rotate_keys`, then
# removing the old one. The embedded default derives a development key from SECRET_KEY.
ENVELOPE_MASTER_KEYS = env_list("ENVELOPE_MASTER_KEYS", [])
if not ENVELOPE_MASTER_KEYS and env_secret("ENVELOPE_MASTER_KEYS"):
    ENVELOPE_MASTER_KEYS = [k.strip() for k in env_secret("ENVELOPE_MASTER_KEYS").split(",") if k.strip()]
# A doctor reads a patient's record while an appointment between them starts within this
# window (days before now / days ahead), besides grants and emergency access.
RECORDS_RELATIONSHIP_PAST_DAYS = env.int("RECORDS_RELATIONSHIP_PAST_DAYS", default=30)
RECORDS_RELATIONSHIP_UPCOMING_DAYS = env.int("RECORDS_RELATIONSHIP_UPCOMING_DAYS", default=7)
RECORDS_EMERGENCY_ACCESS_HOURS = env.int("RECORDS_EMERGENCY_ACCESS_HOURS", default=4)
RECORDS_GRANT_MAX_DAYS = env.int("RECORDS_GRANT_MAX_DAYS", default=365)
# Deleted entries and documents (and erased records) are kept this long before they are purged.
RECORDS_RETENTION_DAYS = env.int("RECORDS_RETENTION_DAYS", default=10 * 365)
RECORDS_DOCUMENT_MAX_BYTES = env.int("RECORDS_DOCUMENT_MAX_BYTES", default=25 * 1024 * 1024)
RECORDS_DOCUMENT_MAX_PAGES = env.int("RECORDS_DOCUMENT_MAX_PAGES", default=300)
RECORDS_DOCUMENT_MAX_FRAMES = env.int("RECORDS_DOCUMENT_MAX_FRAMES", default=1000)
RECORDS_LINK_MINUTES = env.int("RECORDS_LINK_MINUTES", default=5)
# Malware scanning: clamd over a Unix socket (CLAMAV_SOCKET) or TCP (CLAMAV_URL, tcp://host:port);
# neither set: the built-in scanner (EICAR, executables, active PDF content).
CLAMAV_SOCKET = env.str("CLAMAV_SOCKET", default="")
CLAMAV_URL = env.str("CLAMAV_URL", default="")
CLAMAV_TIMEOUT_SECONDS = env.int("CLAMAV_TIMEOUT_SECONDS", default=30)
# OCR of scanned images and image-only PDFs (Debian package tesseract-ocr, scripts/ensure-tesseract).
TESSERACT_BINARY = env.str("TESSERACT_BINARY", default="tesseract")
# Image-only PDFs are rendered page by page for OCR; pages after this many are not read.
RECORDS_OCR_MAX_PAGES = env.int("RECORDS_OCR_MAX_PAGES", default=50)
if min(RECORDS_RELATIONSHIP_PAST_DAYS, RECORDS_RELATIONSHIP_UPCOMING_DAYS) < 0 or min(RECORDS_EMERGENCY_ACCESS_HOURS, RECORDS_GRANT_MAX_DAYS, RECORDS_RETENTION_DAYS, RECORDS_LINK_MINUTES, RECORDS_OCR_MAX_PAGES) < 1:
    raise ImproperlyConfigured("RECORDS_* windows must be positive (relationship days may be 0).")

# --- Payments (used from Step 4) ----------------------------------------------------------

STRIPE_SECRET_KEY = env_secret("STRIPE_SECRET_KEY") or ""
STRIPE_WEBHOOK_SECRET = env_secret("STRIPE_WEBHOOK_SECRET") or ""
RAZORPAY_KEY_ID = env_secret("RAZORPAY_KEY_ID") or ""
RAZORPAY_KEY_SECRET = env_secret("RAZORPAY_KEY_SECRET") or ""
RAZORPAY_WEBHOOK_SECRET = env_secret("RAZORPAY_WEBHOOK_SECRET") or ""
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env.int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", default=300)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
PAYMENT_GATEWAY_TIMEOUT_SECONDS = env.int("PAYMENT_GATEWAY_TIMEOUT_SECONDS", default=20)
# Force one gateway for every payment (sandbox, stripe, razorpay); blank: INR or an Indian billing
# country → Razorpay, everything else → Stripe, and the sandbox when that gateway has no keys.
PAYMENT_GATEWAY = env.str("PAYMENT_GATEWAY", default="")
# The offline sandbox takes test cards: never in production unless asked for (a staging site).
PAYMENT_SANDBOX_ALLOWED = env.bool("PAYMENT_SANDBOX_ALLOWED", default=True)
if PAYMENT_GATEWAY not in ("", "sandbox", "stripe", "razorpay"):
    raise ImproperlyConfigured("PAYMENT_GATEWAY must be blank, sandbox, stripe or razorpay.")
# The sandbox signs its webhooks like a real gateway would.
SANDBOX_WEBHOOK_SECRET = env_secret("SANDBOX_WEBHOOK_SECRET") or hashlib.sha256(f"sandbox-webhooks:{SECRET_KEY}".encode()).hexdigest()
PLATFORM_FEE_PERCENT = env.int("PLATFORM_FEE_PERCENT", default=10)
PAYMENT_MAX_FAILURES_PER_HOUR = env.int("PAYMENT_MAX_FAILURES_PER_HOUR", default=5)
REFUND_MAX_ATTEMPTS = env.int("REFUND_MAX_ATTEMPTS", default=6)
# A refund left "processing" by a worker that died mid-call is sent again (same idempotency key,
# so the gateway answers with the same refund) once this lease has passed.
REFUND_PROCESSING_LEASE_SECONDS = env.int("REFUND_PROCESSING_LEASE_SECONDS", default=600)
INVOICE_PREFIX = env.str("INVOICE_PREFIX", default="MM")
# Care plans: a failed renewal is retried this many days after the period's end (entitlements
# keep working until the last retry); after the last failure the subscription expires.
SUBSCRIPTION_RETRY_DAYS = env.list("SUBSCRIPTION_RETRY_DAYS", cast=int, default=[1, 3, 5])
if not SUBSCRIPTION_RETRY_DAYS or SUBSCRIPTION_RETRY_DAYS != sorted(set(SUBSCRIPTION_RETRY_DAYS)) or SUBSCRIPTION_RETRY_DAYS[0] < 1:
    raise ImproperlyConfigured("SUBSCRIPTION_RETRY_DAYS must be increasing whole days, e.g. 1,3,5.")

# --- Signed documents (receipts, prescriptions: medimeet/core/pdf.py) ----------------------
# Every receipt and prescription PDF carries a PAdES signature made with this key and certificate
# (PEM). ``PDF_SIGNING_KEY`` / ``PDF_SIGNING_CERT`` / ``PDF_SIGNING_CHAIN`` may hold the PEM itself;
# the ``*_FILE`` variables name files. With none set (the embedded default) the files under
# var/pdf-signing/ are used, which `manage.py pdf_signing_cert` creates (self-signed, development
# only; `make run` creates them when missing). See docs/deployment.md for a real certificate.
PDF_SIGNING_DIR = VAR_DIR / "pdf-signing"
PDF_SIGNING_KEY_FILE = env.str("PDF_SIGNING_KEY_FILE", default=str(PDF_SIGNING_DIR / "key.pem"))
PDF_SIGNING_CERT_FILE = env.str("PDF_SIGNING_CERT_FILE", default=str(PDF_SIGNING_DIR / "cert.pem"))
PDF_SIGNING_KEY = env.str("PDF_SIGNING_KEY", default="")
PDF_SIGNING_CERT = env.str("PDF_SIGNING_CERT", default="")
# Intermediate certificates up to the CA's root, embedded in each signature (optional).
PDF_SIGNING_CHAIN = env.str("PDF_SIGNING_CHAIN", default="")
PDF_SIGNING_CHAIN_FILE = env.str("PDF_SIGNING_CHAIN_FILE", default="")
PDF_SIGNING_KEY_PASSPHRASE = env_secret("PDF_SIGNING_KEY_PASSPHRASE") or ""
# Certificates of earlier signing keys (PEM, several in one file), so documents signed before a
# key rotation still verify as MediMeet's.
PDF_SIGNING_PREVIOUS_CERTS_FILE = env.str("PDF_SIGNING_PREVIOUS_CERTS_FILE", default="")
# An RFC 3161 timestamp authority (e.g. https://freetsa.org/tsr): each signature then carries a
# trusted time. Blank: the signer's own clock only (the signing time is still signed).
PDF_SIGNING_TSA_URL = env.str("PDF_SIGNING_TSA_URL", default="")
PDF_SIGNING_TSA_TIMEOUT_SECONDS = env.int("PDF_SIGNING_TSA_TIMEOUT_SECONDS", default=10)
# Public verifier (/documents/verify/, POST /api/v1/documents/verify/): largest upload accepted.
PDF_VERIFY_MAX_BYTES = env.int("PDF_VERIFY_MAX_BYTES", default=10 * 1024 * 1024)

# --- Feature flags and platform settings (docs/architecture.md, "Flags, platform settings, health") ---
# Flags and switches: django-waffle (medimeet/core/flags.py names them; rows made by migration
# core 0007 and kept by a post_migrate hook). Platform settings that staff change without a
# deploy: django-constance in the database (medimeet/core/platform.py reads and validates them).
# Both are read in the web process and the Celery worker, so a change must be seen by every
# process at once: with Redis they are cached there (a change rewrites or flushes the shared
# key); without Redis (the embedded default) there is no cache shared between Daphne and the
# worker, so they are read from the database each time (waffle through a dummy cache; constance
# refuses a per-process LocMem cache for exactly this reason).
WAFFLE_CACHE_NAME = "default" if REDIS_URL else "flags"
if not REDIS_URL:
    CACHES["flags"] = {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
WAFFLE_SECURE = not DEBUG and SITE_URL.startswith("https")
WAFFLE_CREATE_MISSING_FLAGS = False  # an unknown name is off; the known ones exist from migrate on
CONSTANCE_BACKEND = "constance.backends.database.DatabaseBackend"
CONSTANCE_DATABASE_CACHE_BACKEND = "default" if REDIS_URL else None
CONSTANCE_SUPERUSER_ONLY = False  # staff with constance.change_config edit them (the "view" permission only reads)
CONSTANCE_ADDITIONAL_FIELDS = {
    "hold_minutes": ["django.forms.IntegerField", {"min_value": 1, "max_value": 120}],
    "cancellation_policy": ["medimeet.core.platform.CancellationPolicyField"],
    "reminder_offsets": ["medimeet.core.platform.ReminderOffsetsField"],
    "currencies": ["medimeet.core.platform.CurrenciesField"],
    "gateway_routes": ["medimeet.core.platform.GatewayRoutesField"],
    "tax_rules": ["medimeet.core.platform.TaxRulesField"],
    "banner_text": ["django.forms.CharField", {"max_length": 300, "required": False, "widget": "django.forms.Textarea", "widget_kwargs": {"attrs": {"rows": 2}}}],
    "email": ["django.forms.EmailField", {"required": False}],
    "phone": ["medimeet.core.platform.PhoneField"],
}
CONSTANCE_CONFIG = {
    "BOOKING_HOLD_MINUTES": (10, "Minutes a slot is held for a patient while they add their details and pay (1–120).", "hold_minutes"),
    "CANCELLATION_POLICY": (
        "24:100, 2:50, 0:0",
        "Refund when a patient cancels, for doctors who set no policy of their own: hours before the start : percent refunded, "
        "comma-separated, e.g. 24:100, 2:50, 0:0 (24 h or more: full refund; 2 h or more: half; later: nothing).",
        "cancellation_policy",
    ),
    "REMINDER_OFFSETS": ("24h, 1h", "Reminders before each appointment for people who have not chosen their own: e.g. 2d, 24h, 1h, 15m (up to six, 5 minutes to 7 days).", "reminder_offsets"),
    "PAYMENT_CURRENCIES": ("USD, EUR, GBP, INR, AUD, CAD, SGD, AED, JPY", "Currencies patients may pay in (ISO codes the platform knows), comma-separated.", "currencies"),
    "PAYMENT_GATEWAY_ROUTES": (
        "IN=razorpay, INR=razorpay, *=stripe",
        "Which gateway takes a payment: billing country (two letters) first, then currency (three letters), then * for the rest. "
        "Gateways: stripe, razorpay, sandbox. A gateway without keys falls back to the sandbox where it is allowed.",
        "gateway_routes",
    ),
    "TAX_RULES": ("IN=GST:18", "Tax included in consultation prices, by the doctor's country: COUNTRY=NAME:RATE separated by commas, e.g. IN=GST:18, GB=VAT:20.", "tax_rules"),
    "MAINTENANCE_BANNER_ENABLED": (False, "Show the maintenance banner on every page and tell the apps (GET /api/v1/flags/)."),
    "MAINTENANCE_BANNER_TEXT": ("", "The banner's text, e.g. \"Payments are paused on Sunday 02:00–03:00 UTC for maintenance.\"", "banner_text"),
    "SUPPORT_EMAIL": ("support@medimeet.local", "Support address shown in the footer, emails and error pages.", "email"),
    "SUPPORT_PHONE": ("", "Support phone shown next to it, in international form (+91 80 1234 5678); empty: none.", "phone"),
}
CONSTANCE_CONFIG_FIELDSETS = {
    "Booking": ("BOOKING_HOLD_MINUTES", "CANCELLATION_POLICY"),
    "Reminders": ("REMINDER_OFFSETS",),
    "Payments": ("PAYMENT_CURRENCIES", "PAYMENT_GATEWAY_ROUTES", "TAX_RULES"),
    "Site": ("MAINTENANCE_BANNER_ENABLED", "MAINTENANCE_BANNER_TEXT", "SUPPORT_EMAIL", "SUPPORT_PHONE"),
}

# --- Internationalisation -----------------------------------------------------------------

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("hi", "Hindi")]
# Our catalogues (locale/<lang>/LC_MESSAGES/django.po), compiled to .mo by `make messages`
# (pybabel, so GNU gettext is not needed) — run by `make test`, `make run` and CI.
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging: one JSON object per line; PHI never enters a log record -----------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "medimeet.core.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "medimeet.core.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
