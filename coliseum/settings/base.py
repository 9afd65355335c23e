"""Settings shared by every environment. Production only tightens these (see production.py).

Every variable read here is listed, with its default, in the README's "Configuration" table.
"""

from __future__ import annotations

import os
import secrets
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import environ
from django.core.exceptions import ImproperlyConfigured

from coliseum.embedded import settings_database_url, settings_redis_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)  # optional; absent in CI


def env_path(var: str, default: Path | str) -> Path:
    """A directory or file from the environment, as the absolute `pathlib.Path` the code joins with `/`
    (django-environ's env.path() returns its own Path type, which has no `/`)."""
    return Path(env.str(var, default=str(default))).expanduser().absolute()


def _database_url() -> str:
    """DATABASE_URL wins; else POSTGRES_* when any is set; else (COLISEUM_SERVICES auto/embedded) the embedded
    server recorded in .data/services.env when it answers; else the local socket, database `coliseum`."""
    if env.str("DATABASE_URL", default=""):
        return env.str("DATABASE_URL")
    if any(
        env.str(k, default="") for k in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER")
    ):
        user = quote(env.str("POSTGRES_USER", default="postgres"))
        password = env.str("POSTGRES_PASSWORD", default="")
        auth = f"{user}:{quote(password)}@" if password else f"{user}@"
        host = env.str("POSTGRES_HOST", default="127.0.0.1")
        port = env.int("POSTGRES_PORT", default=5432)
        name = env.str("POSTGRES_DB", default="coliseum")
        return f"postgres://{auth}{host}:{port}/{name}"
    # COLISEUM_SERVICES (issue 10): the embedded server the supervisor started, when there is one.
    return settings_database_url() or "postgres:///coliseum"


def _redis_url() -> str:
    """REDIS_URL wins; else REDIS_HOST/PORT/PASSWORD; else (COLISEUM_SERVICES auto/embedded) the embedded
    server recorded in .data/services.env when it answers; else redis://127.0.0.1:6379/0."""
    if env.str("REDIS_URL", default=""):
        return env.str("REDIS_URL")
    if not any(env.str(k, default="") for k in ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD")):
        embedded = settings_redis_url()
        if embedded:
            return embedded
    host = env.str("REDIS_HOST", default="127.0.0.1")
    port = env.int("REDIS_PORT", default=6379)
    password = env.str("REDIS_PASSWORD", default="")
    auth = f":{quote(password)}@" if password else ""
    return f"redis://{auth}{host}:{port}/0"


DEBUG = env.bool("DEBUG", default=False)


def _installation_secret_key() -> str:
    """Outside production, with no SECRET_KEY in the environment: a random key made once per installation and
    kept in .data/secret_key (mode 0600, never committed). A published default would let anyone who can reach
    the server mint sign-in tokens for any user, and it also derives the key that encrypts stored secrets."""
    path = BASE_DIR / ".data" / "secret_key"
    if not path.exists():
        try:  # O_EXCL: processes starting together agree on the first key written
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        except OSError:
            return ""  # read-only image: Django refuses an empty key (production.py requires SECRET_KEY)
        else:
            with os.fdopen(fd, "w") as sink:
                sink.write(secrets.token_urlsafe(50))
    for _ in range(50):  # a concurrent creator may not have written it yet
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.02)
    raise RuntimeError(f"{path} is empty: delete it, or set SECRET_KEY")


SECRET_KEY = env.str("SECRET_KEY", default="") or _installation_secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
from corsheaders.defaults import default_headers as _cors_default_headers  # noqa: E402

# The tracking API (/v1/*) answers any origin (ingestion.http.segment_cors_enabled); the rest of the API only
# CORS_ALLOWED_ORIGINS. Browsers cache a preflight for a day; gzip bodies and rate-limit headers may cross.
CORS_PREFLIGHT_MAX_AGE = 86400
CORS_ALLOW_HEADERS = (*_cors_default_headers, "content-encoding")
CORS_EXPOSE_HEADERS = ["Retry-After", "X-RateLimit-Reset"]
# The proxies in front of us (addresses or CIDR networks). X-Forwarded-For is believed only as far as these
# vouch for it; empty: every throttle, rate limit and audit entry uses REMOTE_ADDR (coliseum/clientaddr.py).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://localhost:8000")
# Where clients reach the WebSocket server (Daphne). Empty: derived from the request's host.
WEBSOCKET_BASE_URL = env.str("WEBSOCKET_BASE_URL", default="")

INSTALLED_APPS = [
    "daphne",
    "coliseum.admin_site.ColiseumAdminConfig",  # django.contrib.admin, our apps listed above dj-stripe's
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as static files (API docs work offline)
    "corsheaders",
    "channels",
    "django_celery_beat",
    "djstripe",
    "coliseum",
    "ingestion",
    "leaderboards",
    "reports",
    "billing",
    "audit",
]

MIDDLEWARE = [
    "coliseum.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "coliseum.errors.ApiErrorEnvelopeMiddleware",  # JSON errors under /api/, /v1/, ... with DEBUG on too
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "coliseum.middleware.RlsMiddleware",  # after auth: staff in /admin/ get the system scope
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "coliseum.urls"
WSGI_APPLICATION = "coliseum.wsgi.application"
ASGI_APPLICATION = "coliseum.asgi.application"

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
            ],
        },
    },
]

DATABASES = {"default": env.db_url_config(_database_url())}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# test_<database>: test runs pointed at different databases (DATABASE_URL) never share a test database.
DATABASES["default"]["TEST"] = {
    "NAME": env.str("TEST_DATABASE_NAME", default=f"test_{DATABASES['default']['NAME']}")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Row-level security (coliseum/rls.py): every connection drops to this NOLOGIN role, which owns nothing,
# so the tenant_isolation policies apply to the application's queries.
DATABASE_APP_ROLE = env.str("DATABASE_APP_ROLE", default="coliseum_app")

REDIS_URL = _redis_url()
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "coliseum",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 2,
            "SOCKET_TIMEOUT": 2,
        },
    }
}

# The channel layer's Redis connection options. channels_redis's core layer waits for a consumer's next
# message with BZPOPMIN and a 5 s server-side timeout, over and over, for as long as the WebSocket lives;
# redis-py 8 made socket_timeout default to 5 s, which fired first and closed every idle WebSocket with 1011
# after ~5 s (channels_redis#422). The read timeout must outlast that wait; 15 s still ends reads on a dead
# link.
CHANNEL_LAYER_REDIS_OPTIONS = {"socket_timeout": 15, "socket_connect_timeout": 5, "socket_keepalive": True}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, **CHANNEL_LAYER_REDIS_OPTIONS}],
            "capacity": 1000,
            "expiry": 30,
        },
    }
}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Each app adds its periodic jobs to this dict in its own `beat.py` (merged in coliseum/celery.py).
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# WhiteNoise serves static files from the WSGI server (no separate file server needed); compressed and
# fingerprinted in production (`collectstatic` runs in the image build and in `make run`).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env_path("STATIC_ROOT", default=BASE_DIR / ".data" / "staticfiles")
MEDIA_ROOT = env_path("MEDIA_ROOT", default=BASE_DIR / ".data" / "media")
# Private files (reports, uploads, exports, backups): never served directly.
PRIVATE_STORAGE_ROOT = env_path("PRIVATE_STORAGE_ROOT", default=BASE_DIR / ".data" / "private")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "coliseum.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "coliseum.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Coliseum API",
    "DESCRIPTION": (
        "Analytics for music and live events: Passport ingestion, KPIs, leaderboards, reports, billing. "
        'Every error answers {"error": {"code", "message", "details"}}.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs/ (Swagger UI) and /api/redoc/ load their assets from /static/, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a `kind` choice field: name each enum after its own set.
    "ENUM_NAME_OVERRIDES": {
        "ApiKeyKindEnum": "coliseum.models.ApiKeyKind",
        "ReportKindEnum": "reports.models.ReportKind",
    },
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
}

# Stripe (optional until billing is configured; see README).
STRIPE_LIVE_SECRET_KEY = env.str("STRIPE_LIVE_SECRET_KEY", default="")
STRIPE_TEST_SECRET_KEY = env.str("STRIPE_TEST_SECRET_KEY", default="sk_test_placeholder")
STRIPE_LIVE_MODE = env.bool("STRIPE_LIVE_MODE", default=False)
DJSTRIPE_WEBHOOK_SECRET = env.str("DJSTRIPE_WEBHOOK_SECRET", default="whsec_placeholder")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_USE_NATIVE_JSONFIELD = True

# Logging: JSON lines with the request id; never personal data.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "coliseum.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "coliseum.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
    },
}

SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="development")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.redis import RedisIntegration

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=SENTRY_ENVIRONMENT,
        integrations=[DjangoIntegration(), CeleryIntegration(), RedisIntegration()],
        send_default_pii=False,
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
    )

# Limits (documented in the README "Limits" table). Apps read their own limits from here.
API_MAX_PAGE_SIZE = 100
# Key for encrypting secrets stored in the database (webhook signing secrets). Defaults to SECRET_KEY.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")

# --- reports ---
# Private report/upload files go to PRIVATE_STORAGE_ROOT unless REPORTS_S3_BUCKET is set (then S3 via
# django-storages; needs boto3 and the usual AWS_* credentials in the environment).
REPORTS_S3_BUCKET = env.str("REPORTS_S3_BUCKET", default="")
REPORTS_S3_REGION = env.str("REPORTS_S3_REGION", default="")
REPORTS_S3_ENDPOINT_URL = env.str("REPORTS_S3_ENDPOINT_URL", default="")
REPORTS_S3_PREFIX = env.str("REPORTS_S3_PREFIX", default="private")
REPORTS_SHARE_MAX_SECONDS = 30 * 24 * 3600
REPORTS_SHARE_DEFAULT_SECONDS = env.int("REPORTS_SHARE_DEFAULT_SECONDS", default=7 * 24 * 3600)
REPORTS_MAX_PERIOD_DAYS = env.int("REPORTS_MAX_PERIOD_DAYS", default=400)
REPORTS_FROM_EMAIL = env.str("REPORTS_FROM_EMAIL", default="reports@coliseum.localhost")
UPLOAD_MAX_LOGO_BYTES = env.int("UPLOAD_MAX_LOGO_BYTES", default=1024 * 1024)
UPLOAD_MAX_DOCUMENT_BYTES = env.int("UPLOAD_MAX_DOCUMENT_BYTES", default=10 * 1024 * 1024)
# ClamAV: path of clamd's unix socket; empty = uploads are stored as "unscanned".
CLAMD_SOCKET = env.str("CLAMD_SOCKET", default="")

# --- ingestion ---
# Dedupe window: an event_id / messageId is counted once per tenant within this many days (>= 7).
INGEST_DEDUPE_WINDOW_DAYS = max(7, env.int("INGEST_DEDUPE_WINDOW_DAYS", default=30))
# Events older than this (by occurred_at, at processing time) are also queued for a bucket recompute.
INGEST_LATE_HORIZON_DAYS = env.int("INGEST_LATE_HORIZON_DAYS", default=7)
INGEST_MAX_CLOCK_SKEW_SECONDS = env.int("INGEST_MAX_CLOCK_SKEW_SECONDS", default=300)  # webhook signatures
INGEST_WEBHOOK_MAX_BYTES = env.int("INGEST_WEBHOOK_MAX_BYTES", default=1024 * 1024)
INGEST_WEBHOOK_MAX_EVENTS = env.int("INGEST_WEBHOOK_MAX_EVENTS", default=1000)
INGEST_EVENT_MAX_BYTES = env.int("INGEST_EVENT_MAX_BYTES", default=32 * 1024)
INGEST_SEGMENT_CALL_MAX_BYTES = env.int("INGEST_SEGMENT_CALL_MAX_BYTES", default=32 * 1024)
INGEST_SEGMENT_BATCH_MAX_BYTES = env.int("INGEST_SEGMENT_BATCH_MAX_BYTES", default=500 * 1024)
INGEST_SEGMENT_BATCH_MAX_EVENTS = env.int("INGEST_SEGMENT_BATCH_MAX_EVENTS", default=2500)
# Token bucket burst, in seconds' worth of the plan's ingest_events_per_second.
INGEST_RATE_BURST_SECONDS = env.int("INGEST_RATE_BURST_SECONDS", default=5)
INGEST_PROCESS_BATCH_SIZE = env.int("INGEST_PROCESS_BATCH_SIZE", default=2000)
INGEST_SWEEP_SECONDS = env.float("INGEST_SWEEP_SECONDS", default=2.0)  # beat sweep period (<= 10 s)

# --- billing ---
# A past_due subscription keeps its plan this many days, then the tenant falls to Basic.
BILLING_PAST_DUE_GRACE_DAYS = env.int("BILLING_PAST_DUE_GRACE_DAYS", default=7)
# Monthly prices (minor units) that `manage.py billing_setup` creates in Stripe.
BILLING_CURRENCY = env.str("BILLING_CURRENCY", default="usd")
BILLING_PRICE_PRO = env.int("BILLING_PRICE_PRO", default=4900)
BILLING_PRICE_ENTERPRISE = env.int("BILLING_PRICE_ENTERPRISE", default=49900)
BILLING_CHECKOUT_SUCCESS_URL = env.str(
    "BILLING_CHECKOUT_SUCCESS_URL",
    default=f"{PUBLIC_BASE_URL}/billing/success?session_id={{CHECKOUT_SESSION_ID}}",
)
BILLING_CHECKOUT_CANCEL_URL = env.str(
    "BILLING_CHECKOUT_CANCEL_URL", default=f"{PUBLIC_BASE_URL}/billing/canceled"
)
BILLING_PORTAL_RETURN_URL = env.str("BILLING_PORTAL_RETURN_URL", default=f"{PUBLIC_BASE_URL}/")
# Per-tenant API rate limit from the plan (a no-op for unauthenticated or tenant-less requests).
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    *REST_FRAMEWORK.get("DEFAULT_THROTTLE_CLASSES", []),  # type: ignore[misc]
    "billing.throttles.TenantPlanThrottle",
]

# --- coliseum core ---
# Password of the demo operator (`admin`) and demo tenant owner (`demo`) that `seed_demo` creates, and the
# seed of the demo write/webhook keys. Local demos only: production.py empties it, and seed_demo refuses then.
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="coliseum-demo")
# Nested Input/OutputSerializer classes get unique OpenAPI component names (see coliseum/schema.py).
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "coliseum.schema.AutoSchema"

# --- ops ---
# Per-request duration/status per endpoint group into Redis (health, alerts, /metrics), after the request id.
MIDDLEWARE.insert(1, "coliseum.ops.middleware.RequestMetricsMiddleware")
OPS_ALERT_ERROR_RATE = env.float("OPS_ALERT_ERROR_RATE", default=0.02)
OPS_ALERT_QUEUE_DEPTH = env.int("OPS_ALERT_QUEUE_DEPTH", default=1000)
OPS_ALERT_P95_SECONDS = env.float("OPS_ALERT_P95_SECONDS", default=30.0)
OPS_ALERT_INGEST_LAG_SECONDS = env.float("OPS_ALERT_INGEST_LAG_SECONDS", default=60.0)
OPS_ALERT_MIN_REQUESTS = env.int("OPS_ALERT_MIN_REQUESTS", default=20)
ALERT_WEBHOOK_URL = env.str("ALERT_WEBHOOK_URL", default="")
OPS_CELERY_QUEUES = env.list("OPS_CELERY_QUEUES", default=["celery", "ingest", "reports"])
OPS_WORKER_PING_TIMEOUT = env.float("OPS_WORKER_PING_TIMEOUT", default=0.5)
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=0)  # 0: keep the audit log forever
AUDIT_EXPORT_MAX_ROWS = env.int("AUDIT_EXPORT_MAX_ROWS", default=100_000)

# --- leaderboards ---
LEADERBOARD_CACHE_SECONDS = env.float("LEADERBOARD_CACHE_SECONDS", default=1.0)  # hot board reads
# The leaderboard API's hot path (leaderboards/fast.py; README, leaderboards): on/off, and how long a process
# trusts a token's member, role and plan (a revoked membership or plan change applies within this time).
LEADERBOARD_FAST_PATH = env.bool("LEADERBOARD_FAST_PATH", default=True)
LEADERBOARD_AUTH_CACHE_SECONDS = env.float("LEADERBOARD_AUTH_CACHE_SECONDS", default=5.0)
LEADERBOARD_UNIQUE_CACHE_SECONDS = env.float("LEADERBOARD_UNIQUE_CACHE_SECONDS", default=5.0)
LEADERBOARD_SNAPSHOT_SECONDS = env.int("LEADERBOARD_SNAPSHOT_SECONDS", default=60)  # previous_rank period
LEADERBOARD_PUSH_INTERVAL = env.float("LEADERBOARD_PUSH_INTERVAL", default=1.0)  # max 1 push/board/interval
LEADERBOARD_MAX_SUBSCRIPTIONS = env.int("LEADERBOARD_MAX_SUBSCRIPTIONS", default=10)  # per WebSocket
LEADERBOARD_TICKET_SECONDS = env.int("LEADERBOARD_TICKET_SECONDS", default=600)  # jumbotron WebSocket ticket
LEADERBOARD_RECONCILE_HORIZON_SECONDS = env.int("LEADERBOARD_RECONCILE_HORIZON_SECONDS", default=86400)
# Reconcile rebuilds at most this many board families of one tenant per run (the ones read last).
LEADERBOARD_RECONCILE_MAX_FAMILIES = env.int("LEADERBOARD_RECONCILE_MAX_FAMILIES", default=100)
# The live feed's channel layer (measured in `make bench` section e; see README, leaderboards).
CHANNEL_LAYERS["default"]["BACKEND"] = env.str(
    "CHANNEL_LAYER_BACKEND", default="channels_redis.core.RedisChannelLayer"
)
# Live feed connection limits (README, leaderboards: "Connection limits"); 0 = no limit. Over one: close 4429.
LEADERBOARD_WS_MAX_PER_USER = env.int("LEADERBOARD_WS_MAX_PER_USER", default=10)  # a member's JWT or tickets
LEADERBOARD_WS_MAX_PER_SHARE_LINK = env.int("LEADERBOARD_WS_MAX_PER_SHARE_LINK", default=5)
LEADERBOARD_WS_MAX_PER_IP = env.int("LEADERBOARD_WS_MAX_PER_IP", default=50)  # client address
LEADERBOARD_WS_MAX_CONNECTIONS = env.int("LEADERBOARD_WS_MAX_CONNECTIONS", default=500)  # per Daphne process
if LEADERBOARD_WS_MAX_CONNECTIONS < 1:
    raise ImproperlyConfigured(
        "LEADERBOARD_WS_MAX_CONNECTIONS must be at least 1: the Redis pool is sized for it."
    )
# The channel layer's Redis pool (redis-py raises MaxConnectionsError past it; default 100) holds at most one
# command per connection in flight (a consumer handles one message at a time), plus the process's one shared
# BZPOPMIN, its backup-queue cleaner and the publisher's group_send: sized for the process's maximum.
LEADERBOARD_WS_POOL_SPARE = 20
for _host in CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]:  # type: ignore[index]
    _host["max_connections"] = LEADERBOARD_WS_MAX_CONNECTIONS + LEADERBOARD_WS_POOL_SPARE

# --- privacy ---
INSTALLED_APPS += ["coliseum.privacy"]
PRIVACY_EXPORT_LINK_SECONDS = env.int("PRIVACY_EXPORT_LINK_SECONDS", default=86400)  # signed export link life
BACKUP_KEEP = env.int("BACKUP_KEEP", default=7)  # pg_dump backups kept in PRIVATE_STORAGE_ROOT/backups

# --- funnels ---
INSTALLED_APPS += ["ingestion.funnels"]

# --- privacy: security headers ---
# Security headers. CSP (django-csp 4): every page (landing, jumbotron, admin, operator console) loads its
# scripts and styles from /static/ with no inline code, so the policy needs no 'unsafe-inline'. JSON data
# blocks (<script type="application/json">) are not executed and need nothing. The API docs load Swagger UI
# and ReDoc from /static/ (drf-spectacular-sidecar); ReDoc's page alone adds inline styles (coliseum/urls.py).
from csp.constants import NONE as _CSP_NONE  # noqa: E402
from csp.constants import SELF as _CSP_SELF  # noqa: E402

INSTALLED_APPS += ["csp"]
# django-csp middleware, adding the live feed WebSocket origins to connect-src
MIDDLEWARE += ["coliseum.privacy.middleware.CSPMiddleware"]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_CSP_SELF],
        "script-src": [_CSP_SELF],
        "style-src": [_CSP_SELF],
        "img-src": [_CSP_SELF, "data:"],
        "font-src": [_CSP_SELF],
        "connect-src": [_CSP_SELF],
        "object-src": [_CSP_NONE],
        "base-uri": [_CSP_SELF],
        "form-action": [_CSP_SELF],
        "frame-ancestors": [_CSP_NONE],
    },
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SESSION_COOKIE_HTTPONLY = True

# --- privacy: admin MFA ---
# TOTP (django-otp) for staff in the admin, with recovery codes (static device); see coliseum/privacy/mfa.py.
# Enforced when ADMIN_MFA_REQUIRED (production's default); failed admin logins are throttled per user and IP.
INSTALLED_APPS += ["django_otp", "django_otp.plugins.otp_totp", "django_otp.plugins.otp_static"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "django_otp.middleware.OTPMiddleware",
)
ADMIN_MFA_REQUIRED = env.bool("ADMIN_MFA_REQUIRED", default=False)
ADMIN_LOGIN_MAX_FAILURES = env.int("ADMIN_LOGIN_MAX_FAILURES", default=5)
ADMIN_LOGIN_WINDOW_SECONDS = env.int("ADMIN_LOGIN_WINDOW_SECONDS", default=900)
OTP_TOTP_ISSUER = "Coliseum"
