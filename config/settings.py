"""Atelier settings: every value comes from the environment, with safe defaults."""

import os
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dj_database_url
from csp.constants import NONCE as CSP_NONCE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_required(name: str, dev_default: str) -> str:
    value = os.environ.get(name, "")
    if value:
        return value
    if DEBUG or TESTING or OFFLINE_COMMAND:
        return dev_default
    raise ImproperlyConfigured(f"The environment variable {name} is required when DEBUG is off.")


TESTING = "pytest" in sys.modules or (len(sys.argv) > 1 and sys.argv[1] == "test")
# Code-only management commands neither serve requests nor read secrets.
OFFLINE_COMMAND = len(sys.argv) > 1 and sys.argv[1] in {
    "makemigrations",
    "spectacular",
    "help",
    "version",
}
DEBUG = env_bool("DEBUG", False)

# Development-only fallbacks; production refuses to start without real values.
SECRET_KEY = env_required("SECRET_KEY", "dev-only-insecure-secret-key-do-not-use-in-production")
FERNET_KEYS = env_list("FERNET_KEYS") or [
    env_required("FERNET_KEYS", "dev-only-insecure-fernet-key-do-not-use-in-production")
]

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG or TESTING else "")
if not ALLOWED_HOSTS and not DEBUG:
    ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "accounts",
    "projects",
    "mcp_servers",
    "credentials",
    "chat",
    "marketplace",
    "legacy",
    "config",
]

MIDDLEWARE = [
    "config.request_log.RequestLogMiddleware",
    "config.middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.CSPMiddleware",
    "config.middleware.BodySizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "config.middleware.AuthenticationMiddleware",
    "config.hostile_input.HostileInputMiddleware",
    "config.readonly.ReadOnlyMiddleware",
    "config.replicas.ReadYourWritesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "config.db_retry.TransientRetryMiddleware",
]

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
                "config.context_processors.read_only",
            ],
        },
    },
]

# Database: SQLite file by default, PostgreSQL (psycopg 3, native pool) from DATABASE_URL.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Server-side parameters, and a statement run 5 times on a connection is prepared: planning
    # the hot queries costs more than executing them. (Behind a transaction-mode pgbouncer,
    # set DB_PREPARE_THRESHOLD=0.)
    _prepare = int(os.environ.get("DB_PREPARE_THRESHOLD", "5"))
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"server_side_binding": True, "prepare_threshold": _prepare or None}
    )
    if TESTING:
        # Tests open connections from threads; persistent connections keep it simple.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    else:
        # A request waits at most 3 s for a connection, so /readyz says 503 soon while the
        # database is down; a failed reconnection is dropped after 5 s, so the next request
        # connects at once when the database is back instead of waiting out a long backoff.
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": 8,
            "timeout": 3,
            "reconnect_timeout": 5,
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0
IS_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"

# Read replicas (config/replicas.py, docs/scaling.md): PostgreSQL hot standbys of the primary,
# aliases replica1, replica2, … read by the marketplace's public pages.
DATABASE_REPLICA_ALIASES = []
for _number, _url in enumerate(env_list("DATABASE_REPLICA_URLS"), start=1):
    if not IS_POSTGRES:
        raise ImproperlyConfigured("DATABASE_REPLICA_URLS needs a PostgreSQL DATABASE_URL.")
    _replica = dj_database_url.parse(_url)
    _replica["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        # A replica that does not answer is given up soon; the primary serves instead.
        "connect_timeout": 2,
    }
    if "pool" in _replica["OPTIONS"]:
        _replica["OPTIONS"]["pool"] = {**_replica["OPTIONS"]["pool"], "timeout": 1}
    _replica["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    _replica["TEST"] = {"MIRROR": "default"}  # tests never create a database for it
    DATABASES[f"replica{_number}"] = _replica
    DATABASE_REPLICA_ALIASES.append(f"replica{_number}")
if DATABASE_REPLICA_ALIASES:
    DATABASE_ROUTERS = ["config.db_router.ReplicaRouter"]
# A replica further behind than this is skipped until it catches up.
REPLICA_MAX_LAG_SECONDS = float(os.environ.get("REPLICA_MAX_LAG_SECONDS", "5"))
# After a write, the writer reads from the primary this long (keep it above the lag limit + 1 s).
REPLICA_STICKY_SECONDS = int(os.environ.get("REPLICA_STICKY_SECONDS", "10"))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]

# Password logins are locked per (username, address) and per address after failed attempts;
# the plain ModelBackend stays listed so sessions it logged in stay valid.
AUTHENTICATION_BACKENDS = [
    "config.auth_backends.ThrottledModelBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
# Files the app keeps (uploads, generated files): the local filesystem under MEDIA_ROOT by
# default; with several app nodes, a shared backend (e.g. django-storages' S3 storage) via
# FILE_STORAGE_BACKEND, so every node reads what another wrote.
MEDIA_ROOT = os.environ.get("MEDIA_ROOT", str(BASE_DIR / "media"))
MEDIA_URL = "media/"
STORAGES = {
    "default": {
        "BACKEND": os.environ.get(
            "FILE_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"
        )
    },
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Without DEBUG, `manage.py collectstatic` (run by `make setup`) fills STATIC_ROOT for WhiteNoise.
WHITENOISE_AUTOREFRESH = DEBUG or TESTING

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# Security headers; SSL redirect on by default, off for plain-http local runs.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG and not TESTING)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not DEBUG and not TESTING
CSRF_COOKIE_SECURE = not DEBUG and not TESTING
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_COOKIE_HTTPONLY = True  # pages send the token from the template, never read the cookie
# Only the app's own static files; inline <script>/<style> need nonce="{{ request.csp_nonce }}".
# data: images are Pico's and Swagger UI's inline SVG icons, and images MCP tools return.
# /api/docs/ adds inline styles.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", CSP_NONCE],
        "style-src": ["'self'", CSP_NONCE],
        "img-src": ["'self'", "data:"],
        "media-src": ["'self'", "data:"],  # audio a tool returned, played in the chat
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
if not DEBUG and not TESTING:
    SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# The staff page that uploads a legacy dump (config.job_views) takes bodies up to this size.
LEGACY_IMPORT_MAX_UPLOAD_MB = int(os.environ.get("LEGACY_IMPORT_MAX_UPLOAD_MB", "2048"))

# Domain settings.
MARKETPLACE_FEE_RATE = Decimal(os.environ.get("MARKETPLACE_FEE_RATE", "0.10"))
TOKEN_TTL_HOURS = int(os.environ.get("TOKEN_TTL_HOURS", "10"))
DOWNLOAD_TOKEN_TTL_MINUTES = int(os.environ.get("DOWNLOAD_TOKEN_TTL_MINUTES", "15"))
# With a job queue (CELERY_BROKER_URL), a project whose files add up to this many bytes has its
# zip built by a worker and served from the file storage (marketplace.zips); 0: always streamed.
PROJECT_ZIP_STORE_BYTES = int(os.environ.get("PROJECT_ZIP_STORE_BYTES", str(20 * 1024 * 1024)))
READ_ONLY = env_bool("READ_ONLY", False)
MCP_ALLOWED_HOSTS = env_list("MCP_ALLOWED_HOSTS")
# Atelier's public origin (https://atelier.example.com): the OAuth callback and the URL of
# Atelier's Client ID Metadata Document are built from it; empty, from each request's host.
SITE_URL = os.environ.get("SITE_URL", "").strip().rstrip("/")
# Connecting, negotiating and listing tools (the whole check; the part of a call before it).
MCP_CONNECT_TIMEOUT_SECONDS = float(os.environ.get("MCP_CONNECT_TIMEOUT_SECONDS", "10"))
# How long a tool call waits for its answer, unless the server sets its own call timeout,
# which may not exceed MCP_MAX_CALL_TIMEOUT_SECONDS.
MCP_TIMEOUT_SECONDS = float(os.environ.get("MCP_TIMEOUT_SECONDS", "30"))
MCP_MAX_CALL_TIMEOUT_SECONDS = int(os.environ.get("MCP_MAX_CALL_TIMEOUT_SECONDS", "300"))
MCP_RESULT_MAX_CHARS = int(os.environ.get("MCP_RESULT_MAX_CHARS", "20000"))
# Binary content (images, audio, blobs) one result keeps; blocks beyond it keep a note.
MCP_BINARY_MAX_BYTES = int(os.environ.get("MCP_BINARY_MAX_BYTES", str(512 * 1024)))
# Whether a server's first tool list is approved by the check that finds it (the old way);
# by default an administrator approves it like any later change.
MCP_APPROVE_FIRST_TOOLS = env_bool("MCP_APPROVE_FIRST_TOOLS", False)
# Tool calls waiting on MCP servers at once (mcp_servers/limits.py): per user and overall
# (counted in the cache, across processes and nodes), and per process (keep it below the
# worker's threads, GUNICORN_THREADS, so other requests always find a free thread).
MCP_MAX_CALLS_PER_USER = int(os.environ.get("MCP_MAX_CALLS_PER_USER", "2"))
MCP_MAX_CALLS = int(os.environ.get("MCP_MAX_CALLS", "16"))
MCP_MAX_CALLS_PER_PROCESS = int(os.environ.get("MCP_MAX_CALLS_PER_PROCESS", "4"))
# A user's session with a server stays open this long after a call, so the next call is one
# request (mcp_servers/sessions.py); 0 opens a session per call. At most this many per process.
MCP_SESSION_IDLE_SECONDS = float(os.environ.get("MCP_SESSION_IDLE_SECONDS", "60"))
MCP_SESSION_MAX_PER_PROCESS = int(os.environ.get("MCP_SESSION_MAX_PER_PROCESS", "32"))
# How long an open session trusts the tool list it fetched for the pinning check, unless the
# server announces a change first.
MCP_TOOL_LIST_TTL_SECONDS = float(os.environ.get("MCP_TOOL_LIST_TTL_SECONDS", "30"))

# The assistant (chat.assistant): model steps in one answer, the provider's read timeout, the
# threads that run answers outside requests, and when a silent running answer counts as dead.
ASSISTANT_MAX_STEPS = int(os.environ.get("ASSISTANT_MAX_STEPS", "8"))
ASSISTANT_PROVIDER_TIMEOUT_SECONDS = float(
    os.environ.get("ASSISTANT_PROVIDER_TIMEOUT_SECONDS", "60")
)
ASSISTANT_WORKERS = int(os.environ.get("ASSISTANT_WORKERS", "4"))
ASSISTANT_RUN_INLINE = env_bool("ASSISTANT_RUN_INLINE", False)
ASSISTANT_STALE_SECONDS = int(os.environ.get("ASSISTANT_STALE_SECONDS", "300"))
# An API client's event stream of a turn ends after this long (the client reconnects): a stream
# holds a server thread while it is open.
ASSISTANT_STREAM_SECONDS = int(os.environ.get("ASSISTANT_STREAM_SECONDS", "60"))
# The demo's MCP server (`manage.py demo_mcp_server`, started by `make run`) listens here on
# 127.0.0.1; seed_demo registers it.
DEMO_MCP_PORT = int(os.environ.get("DEMO_MCP_PORT", "8765"))
# Addresses that may read /metrics without logging in (staff may read it from anywhere).
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", "127.0.0.1,::1")
# More credential uses than this by one user in the period counts as a burst (an alert).
CREDENTIAL_USE_ALERT_RATE = os.environ.get("CREDENTIAL_USE_ALERT_RATE", "300/hour")

# Cache: Redis when REDIS_URL is set, process-local memory otherwise.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Background jobs (config.celery): with CELERY_BROKER_URL set (Redis), assistant turns and the
# scheduled MCP health checks run on Celery workers (`celery -A config worker`, `celery -A config
# beat`); unset, turns run in this process's thread pool and jobs started by hand run inline.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
# A job is acknowledged when it ends, not when it starts: a worker that dies mid-job leaves it
# on the broker for another worker. Jobs are written to be run again safely.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A job not acknowledged this long after a worker took it goes to another worker: above the
# longest job (an assistant turn: ASSISTANT_MAX_STEPS provider calls and its tool calls).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
    # Workers look for such jobs every 10 s (kombu's interval); kombu's default throttle would
    # make that every tenth look only.
    "unacked_restore_throttle": 1,
}
MCP_CHECK_INTERVAL_SECONDS = int(os.environ.get("MCP_CHECK_INTERVAL_SECONDS", "300"))
# Jobs started from the staff pages (config.jobs: key rotation, legacy import). A running job
# not heard from for JOBS_STALE_SECONDS has lost its worker: the scheduler (every
# JOBS_RESUME_INTERVAL_SECONDS) or the job's page hands it to another, which goes on from the
# job's checkpoint. JOBS_RUN_INLINE runs them in the caller instead (tests, scripts).
JOBS_STALE_SECONDS = int(os.environ.get("JOBS_STALE_SECONDS", "120"))
JOBS_RESUME_INTERVAL_SECONDS = int(os.environ.get("JOBS_RESUME_INTERVAL_SECONDS", "60"))
JOBS_RUN_INLINE = env_bool("JOBS_RUN_INLINE", False)
CELERY_BEAT_SCHEDULE = {
    "check-mcp-servers": {
        "task": "mcp_servers.tasks.check_mcp_servers",
        "schedule": MCP_CHECK_INTERVAL_SECONDS,
    },
    "resume-stalled-jobs": {
        "task": "config.tasks.resume_stalled_jobs",
        "schedule": JOBS_RESUME_INTERVAL_SECONDS,
    },
}

# API
THROTTLE_ANON_RATE = os.environ.get("THROTTLE_ANON_RATE", "300/min")
THROTTLE_USER_RATE = os.environ.get("THROTTLE_USER_RATE", "1200/min")
THROTTLE_AUTH_RATE = os.environ.get("THROTTLE_AUTH_RATE", "20/min")
THROTTLE_AUTH_ADDRESS_RATE = os.environ.get("THROTTLE_AUTH_ADDRESS_RATE", "100/min")
THROTTLE_SENSITIVE_RATE = os.environ.get("THROTTLE_SENSITIVE_RATE", "60/min")
# One limit per action, the same counter for its page and its API endpoint (per user; sign-up
# per address). Unset: THROTTLE_SENSITIVE_RATE.
THROTTLE_SIGNUP_RATE = os.environ.get("THROTTLE_SIGNUP_RATE", "20/hour")
THROTTLE_PURCHASE_RATE = os.environ.get("THROTTLE_PURCHASE_RATE", "")
THROTTLE_DOWNLOAD_RATE = os.environ.get("THROTTLE_DOWNLOAD_RATE", "")
THROTTLE_REVIEW_RATE = os.environ.get("THROTTLE_REVIEW_RATE", "")
THROTTLE_MCP_CALL_RATE = os.environ.get("THROTTLE_MCP_CALL_RATE", "")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "config.api.pagination.Pagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "config.api.schema.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.api.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "config.api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["config.api.throttling.RequestRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": THROTTLE_ANON_RATE,
        "user": THROTTLE_USER_RATE,
        "auth": THROTTLE_AUTH_RATE,
        "sensitive": THROTTLE_SENSITIVE_RATE,
    },
    "COERCE_DECIMAL_TO_STRING": True,
    # Client address for throttles: REMOTE_ADDR unless trusted proxies add X-Forwarded-For.
    "NUM_PROXIES": int(os.environ.get("NUM_PROXIES", "0")),
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=TOKEN_TTL_HOURS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Atelier API",
    "DESCRIPTION": "Projects, chat, MCP servers, credentials and the marketplace.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.api.schema.nullable_enums_without_nullable",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ProjectStatusEnum": "projects.models.Project.Status",
        "McpServerStatusEnum": "mcp_servers.models.McpServer.Status",
        "PurchaseStatusEnum": "marketplace.models.Purchase.Status",
    },
}

# One line per record on stderr: JSON when it is not a terminal, with the request id, user and view.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "config.request_log.RequestContextFilter"}},
    "formatters": {"structured": {"()": "config.request_log.LogFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_context"],
            "formatter": "structured",
        }
    },
    # Django's own loggers go through the root's handler too, so their lines are structured.
    "loggers": {"django": {"handlers": [], "level": "INFO", "propagate": True}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
# Every handler scrubs secrets (auth headers, credential values, tokens) last, before writing.
LOGGING.setdefault("filters", {})["scrub_secrets"] = {"()": "config.logging.ScrubSecretsFilter"}
for _handler in LOGGING["handlers"].values():
    _handler["filters"] = [*_handler.get("filters", []), "scrub_secrets"]
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.logging.SecretsExceptionReporterFilter"
