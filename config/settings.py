"""Settings for Credits. Every knob is an environment variable (or a line in `.env`) with a safe default."""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)  # `make run` turns it on; everything else runs with it off
# The key signs sessions, sign-up and reset links: the development key below is public (it is in this
# repository), so it is used only with DEBUG on (`make run`). With DEBUG off a server refuses to start without a
# real key (the test suite's settings, config/test_settings.py, export a throwaway one).
_DEV_SECRET = "insecure-dev-key-change-me-" + "x" * 40
SECRET_KEY = env.str("SECRET_KEY", default="")
if not DEBUG and SECRET_KEY == _DEV_SECRET:
    raise ImproperlyConfigured(
        "SECRET_KEY is the public development key, which anyone can use to sign links: with DEBUG off set "
        "SECRET_KEY to a long random secret of your own."
    )
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = _DEV_SECRET
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: with DEBUG off Credits will not start on the public development key, so set "
            "SECRET_KEY to a long random secret (python -c 'import secrets; print(secrets.token_urlsafe(50))') "
            "or, for local development only, DEBUG=true."
        )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# A credit costs 1 / CREDITS_PER_USD dollars (default: $0.01).
CREDITS_PER_USD = env.int("CREDITS_PER_USD", default=100)
INVITE_MAX_AGE_DAYS = env.int("INVITE_MAX_AGE_DAYS", default=7)  # how long an invitation link works

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "pgtrigger",
    "axes",
    "django_tasks_db",  # the task queue's table, and its admin (Task results) for staff
    # Layers, bottom up (docs/architecture.md): orgs <- wallets <- features <- web/api <- devtools.
    "core",  # no models: the database cache's table (its migration) and the start-up cache warning
    "orgs",
    "wallets",
    "purchases",  # Django label "billing"
    "credit_requests",
    "members",
    "apikeys",
    "alerts",
    "schedules",
    "holds",
    "expiry",
    "reporting",  # the daily usage rollup (docs/usage.md)
    "web",
    "devtools",
    "ninja",  # the API docs page serves its vendored Swagger UI from static files, never a CDN
]

MIDDLEWARE = [
    "core.logcontext.RequestContextMiddleware",
    "core.db_unavailable.DatabaseUnavailableMiddleware",  # a lost database connection: 503, not 500
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.SessionMiddleware",  # this and the other core.middleware entries: skipped under /api/
    "django.middleware.common.CommonMiddleware",
    "core.siteurl.SiteUrlMiddleware",  # links in emails: SITE_URL, else the host serving this request
    "django.middleware.csrf.CsrfViewMiddleware",  # by name: the deploy check looks for it (API views: csrf_exempt)
    "core.middleware.AuthenticationMiddleware",
    "core.replica.ReadYourWritesMiddleware",  # after a write, that browser's reports read the primary for a while
    "core.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # kept as is: axes checks for it by name; it costs API requests nothing
    "core.middleware.HtmxMiddleware",
    "orgs.middleware.WorkspaceMiddleware",
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
                "web.context_processors.workspace",
            ],
        },
    },
]

# PostgreSQL only. Without DATABASE_URL: the embedded server that `make run`/`make test` start
# (`python -m devtools.embedded_pg start`, data in .pgdata/).
DATABASES = {
    "default": env.db(
        "DATABASE_URL",
        default=f"postgres://postgres@127.0.0.1:{env.int('EMBEDDED_PG_PORT', default=54329)}/credits",
    )
}
if not DATABASES["default"]["ENGINE"].endswith(("postgresql", "postgis")):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("Credits runs on PostgreSQL only: DATABASE_URL must be a postgres://... URL.")
# A new PostgreSQL backend per request costs more than most requests do. By default each process keeps a pool
# of connections (psycopg_pool, Django's OPTIONS["pool"]): a request borrows one and gives it back at its end.
# The pool opens up to DB_POOL_MAX_SIZE at once (one per thread that uses the database: a sync gunicorn worker
# needs one), keeps DB_POOL_MIN_SIZE open, closes the others after DB_POOL_MAX_IDLE idle seconds, and makes a
# request wait at most DB_POOL_TIMEOUT seconds for one. DB_POOL=false: one persistent connection per thread
# instead, kept CONN_MAX_AGE seconds. DB_HEALTH_CHECKS=true checks a connection (one round trip) each time a
# request takes it; off, a connection broken by a database restart fails one request (503, retry) and is dropped.
DB_POOL = env.bool("DB_POOL", default=True)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DB_HEALTH_CHECKS", default=not DB_POOL)
if DB_POOL:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections; Django refuses both
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=64),
        "max_idle": env.float("DB_POOL_MAX_IDLE", default=60.0),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# A stuck row lock becomes a clean, retryable error (LedgerBusy) instead of a hang.
DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
    f"-c lock_timeout={env.int('LEDGER_LOCK_TIMEOUT_MS', default=10_000)}"
)
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default=None)}
# The ledger's hot statements run as server-side prepared statements (wallets.ledger.execute_prepared).
# Turn off behind a pooler that cannot keep them (PgBouncer in transaction mode before 1.21).
LEDGER_PREPARED_STATEMENTS = env.bool("LEDGER_PREPARED_STATEMENTS", default=True)
# Read replica (core/replica.py, docs/operations.md "Read replica"): with DATABASE_REPLICA_URL set, reports (the
# Transactions list, its CSV export, the balance chart) read from it; money, balances and permissions never do.
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = env.db("DATABASE_REPLICA_URL")
    if not DATABASES["replica"]["ENGINE"].endswith(("postgresql", "postgis")):
        raise ImproperlyConfigured("DATABASE_REPLICA_URL must be a postgres://... URL, like DATABASE_URL.")
    # No pool: one persistent connection per thread, so a dead replica costs one connect_timeout (a pool would
    # make the request wait DB_POOL_TIMEOUT), then reads go to the primary until it answers again.
    DATABASES["replica"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    # The primary's options (lock_timeout…) but its pool, the replica URL's own, and a short connect timeout.
    DATABASES["replica"]["OPTIONS"] = {
        **{key: value for key, value in DATABASES["default"]["OPTIONS"].items() if key != "pool"},
        **DATABASES["replica"].get("OPTIONS", {}),
        "connect_timeout": env.int("REPLICA_CONNECT_TIMEOUT", default=2),
    }
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
REPLICA_READS = env.bool("REPLICA_READS", default=True)  # false: every read goes to the primary
REPLICA_CHECK_SECONDS = env.float("REPLICA_CHECK_SECONDS", default=2.0)  # re-check health at most this often
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=5.0)  # further behind: read the primary
REPLICA_PIN_SECONDS = env.int("REPLICA_PIN_SECONDS", default=5)  # read-your-writes window after a write
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "orgs.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "wallet"  # unused by sign-in, which lands in the user's org (web/views/accounts.py: landing_url)
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
USE_THOUSAND_SEPARATOR = False

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str("STATICFILES_BACKEND", default="django.contrib.staticfiles.storage.StaticFilesStorage")
    },
}

# Django 6.1 mailers (EMAIL_BACKEND and EMAIL_HOST… are deprecated). Console by default; set
# EMAIL_URL=smtp+tls://user:password@host:587 for SMTP (EMAIL_BACKEND still picks another backend class).
_email = env.email_url("EMAIL_URL") if env.str("EMAIL_URL", default="") else {}
MAILERS = {
    "default": {
        "BACKEND": _email.get("EMAIL_BACKEND")
        or env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"),
        "OPTIONS": {
            key: _email[setting]
            for key, setting in [
                ("host", "EMAIL_HOST"),
                ("port", "EMAIL_PORT"),
                ("username", "EMAIL_HOST_USER"),
                ("password", "EMAIL_HOST_PASSWORD"),
                ("use_tls", "EMAIL_USE_TLS"),
                ("use_ssl", "EMAIL_USE_SSL"),
            ]
            if _email.get(setting) not in (None, "")
        }
        | ({"timeout": env.int("EMAIL_TIMEOUT", default=10)} if _email else {}),
    }
}
# Absolute links in emails (core/siteurl.py): this address when set (set it in production), else the scheme and
# host of the request that sends the email.
SITE_URL = env.str("SITE_URL", default="")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Credits <credits@localhost>")

# Background tasks (Django's task framework): emails are sent by `core.tasks.send_email`, queued in the
# database (django-tasks-db) and run by `manage.py db_worker`. TASKS_BACKEND=
# django.tasks.backends.immediate.ImmediateBackend runs each task at once in the process that enqueues it
# (no worker, no retries; the tests use it).
TASKS = {"default": {"BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend")}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "core.logcontext.RequestContextFilter"}},
    "formatters": {
        "plain": {
            # One record, one line: every value escaped, secret URL parts redacted (core/logcontext.py).
            "class": "core.logcontext.EscapingFormatter",
            "format": (
                "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s user=%(user_id)s org=%(org_id)s"
                " %(message)s"
            ),
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_context"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "stripe": {"level": "WARNING"},
    },
}
CSRF_FAILURE_VIEW = "config.views.csrf_failure"

# --- Production safety: secure by default, relaxed only where `make run` / tests need it. ---
from django.utils.csp import CSP  # noqa: E402

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG and env.bool("HTTPS", default=False))
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=env.bool("HTTPS", default=False))
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=env.bool("HTTPS", default=False))
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=env.bool("HTTPS", default=False))
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("USE_X_FORWARDED_PROTO", default=False):  # opt-in: only behind a proxy that sets it
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF, *env.list("CSP_FORM_ACTION", default=[])],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)  # hours; staff can also unlock in admin
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
# Failures count per account however its email is typed (sign-in matches it case-insensitively).
AXES_USERNAME_CALLABLE = "orgs.forms.axes_username"
AXES_LOCKOUT_TEMPLATE = "orgs/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)

# Rate-limit counters live here, so every process must share it: the database cache by default (its table is
# made by core's migration; room for 10,000 live counters before it culls), or CACHE_URL=redis://…. A
# per-process cache (locmemcache://) is warned about at start-up when DEBUG is off (core/apps.py).
CACHES = {"default": env.cache("CACHE_URL", default="dbcache://credits_cache?MAX_ENTRIES=10000")}
# Per-user rate limits on money-moving POSTs and credit requests: (requests, seconds).
RATE_LIMIT_MONEY = (env.int("RATE_LIMIT_MONEY_COUNT", default=60), env.int("RATE_LIMIT_MONEY_SECONDS", default=60))
RATE_LIMIT_REQUESTS = (
    env.int("RATE_LIMIT_REQUESTS_COUNT", default=10),
    env.int("RATE_LIMIT_REQUESTS_SECONDS", default=60),
)
# Emails sent by sign-up and password reset (anonymous): (emails, seconds) per target address (past it the
# same page is shown and nothing is sent) and per client IP (past it, 429). Both forms share each budget.
RATE_LIMIT_SIGNUP_EMAIL = (
    env.int("RATE_LIMIT_SIGNUP_EMAIL_COUNT", default=5),
    env.int("RATE_LIMIT_SIGNUP_EMAIL_SECONDS", default=3600),
)
RATE_LIMIT_SIGNUP_IP = (
    env.int("RATE_LIMIT_SIGNUP_IP_COUNT", default=20),
    env.int("RATE_LIMIT_SIGNUP_IP_SECONDS", default=3600),
)

# The API's per-key rate limit, counted in the shared cache above.
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=600)
# Stored API responses for Idempotency-Key are kept at least this long (purge_idempotency_records).
API_IDEMPOTENCY_RETENTION_HOURS = env.int("API_IDEMPOTENCY_RETENTION_HOURS", default=48)


# Stripe. purchases/stripe_client.py is the only module that reads these. With no STRIPE_SECRET_KEY the app
# talks to the built-in Stripe stand-in (devtools/stripe_standin, mounted at /stripe-standin/), so the demo
# works offline; set real test keys (and STRIPE_API_BASE="") to use Stripe itself.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_STANDIN = env.bool("STRIPE_STANDIN", default=DEBUG and not STRIPE_SECRET_KEY)  # DEBUG demo or explicit only
if STRIPE_STANDIN:
    INSTALLED_APPS.append("devtools.stripe_standin")
    STRIPE_SECRET_KEY = STRIPE_SECRET_KEY or "sk_test_standin_" + "0" * 24
# Where the SDK sends API calls: Stripe's own (https://api.stripe.com) when empty; with the stand-in, its
# absolute URL on this server (`make run` passes STRIPE_STANDIN_API_BASE from its HOST and PORT).
STRIPE_API_BASE = env.str(
    "STRIPE_API_BASE",
    default=env.str("STRIPE_STANDIN_API_BASE", default="http://127.0.0.1:8000/stripe-standin")
    if STRIPE_STANDIN
    else "",
)
STRIPE_WEBHOOK_SECRET = env.str(
    "STRIPE_WEBHOOK_SECRET", default="whsec_standin_local_demo_secret" if STRIPE_STANDIN else ""
)
# During a webhook secret rotation both the old and the new secret are accepted.
STRIPE_WEBHOOK_SECRET_PREVIOUS = env.str("STRIPE_WEBHOOK_SECRET_PREVIOUS", default="")
STRIPE_WEBHOOK_TOLERANCE = env.int("STRIPE_WEBHOOK_TOLERANCE", default=300)
# Stand-in only: where it delivers events (empty: the app's webhook URL on the host that served checkout),
# and how long a "delayed payment" takes to settle and a "late" delivery waits.
STRIPE_STANDIN_WEBHOOK_URL = env.str("STRIPE_STANDIN_WEBHOOK_URL", default="")
STRIPE_STANDIN_ASYNC_DELAY = env.float("STRIPE_STANDIN_ASYNC_DELAY", default=3.0)
STRIPE_STANDIN_LATE_DELAY = env.float("STRIPE_STANDIN_LATE_DELAY", default=5.0)
# Tests that deliver events themselves turn the stand-in's own background deliveries off.
STRIPE_STANDIN_AUTODELIVER = env.bool("STRIPE_STANDIN_AUTODELIVER", default=True)
# Buy Credits limits, in US cents.
PURCHASE_MIN_CENTS = env.int("PURCHASE_MIN_CENTS", default=500)
PURCHASE_MAX_CENTS = env.int("PURCHASE_MAX_CENTS", default=10_000_000)
