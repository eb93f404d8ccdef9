"""Settings for the test suite: SQLite unless DATABASE_URL / REDIS_URL are set (as in .ci/run)."""

import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

# Under pytest-xdist (.ci/run: `-n 2`) each worker gets a Redis database of its own, counting
# down from REDIS_URL's: the suite empties the cache between tests, which would wipe the other
# worker's throttles and lockouts mid-test.
if os.environ.get("REDIS_URL") and os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw"):
    _url = urlsplit(os.environ["REDIS_URL"])
    _db = int(_url.path.strip("/") or 0) - int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw"))
    if _db < 0:
        raise RuntimeError("REDIS_URL's database number leaves no Redis database for every xdist worker")
    os.environ["REDIS_URL"] = _url._replace(path=f"/{_db}").geturl()

from .base import *  # noqa: E402, F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="medimeet-test-media-"))
STORAGES = {  # noqa: F405
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
FIELD_ENCRYPTION_KEYS = ["bWVkaW1lZXQtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE="]
# Test fixtures pin their own rates where a test is about throttling.
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "anon": "10000/min", "user": "10000/min", "login": "10000/min", "register": "10000/min", "password_reset": "10000/min", "document_verify": "10000/min"}}  # noqa: F405
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file on tmpfs rather than SQLite's in-memory database: every thread then opens its own
    # connection. With ":memory:", Django hands the test's one connection to the live server's
    # request threads, and two requests at once (a page and its /jsi18n/) each BEGIN on it:
    # "cannot start a transaction within a transaction". WAL + BEGIN IMMEDIATE + the busy
    # timeout (base settings) serialise writers as in the embedded default.
    _tmp = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    DATABASES["default"]["TEST"] = {"NAME": str(_tmp / f"medimeet-test-{os.getpid()}.sqlite3")}  # noqa: F405
else:
    # pytest-django creates and drops the test database: no pool holding connections to it.
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
    DATABASES["default"].get("OPTIONS", {}).pop("pool", None)  # noqa: F405
if REDIS_URL:  # noqa: F405
    # Keep test keys apart from a developer's running instance.
    CACHES["default"]["KEY_PREFIX"] = "medimeet-test"  # noqa: F405
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = "medimeet-test:channels"  # noqa: F405

# pytest-django's live_server is WSGI (no websockets): the booking page opens no availability
# socket there. Tests served by Daphne (asgi_live_server) turn it on.
LIVE_AVAILABILITY_ON_PAGES = False

# Serve static files straight from the app and static/ directories (no collectstatic needed).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
NOTIFICATION_MAX_RETRIES = 3
NOTIFICATION_RETRY_BACKOFF_SECONDS = 1
