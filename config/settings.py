"""Settings for Credits. Every knob is an environment variable (or a line in `.env`) with a safe default."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="insecure-dev-key-change-me-" + "x" * 40)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# A credit costs 1 / CREDITS_PER_USD dollars (default: $0.01).
CREDITS_PER_USD = env.int("CREDITS_PER_USD", default=100)

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
    "orgs",
    "wallets",
    "billing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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
                "orgs.context_processors.workspace",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers queue for the lock instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
    # A stuck row lock becomes a clean, retryable error (LedgerBusy) instead of a hang.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c lock_timeout={env.int('LEDGER_LOCK_TIMEOUT_MS', default=10_000)}"
    )
    DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default=None)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "orgs.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "wallet"
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

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Credits <credits@localhost>")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "stripe": {"level": "WARNING"}},
}
CSRF_FAILURE_VIEW = "config.views.csrf_failure"

# Stripe. billing/stripe_client.py is the only module that reads these. With no STRIPE_SECRET_KEY the app
# talks to the built-in Stripe stand-in (billing/stripe_standin, mounted at /stripe-standin/), so the demo
# works offline; set real test keys (and STRIPE_API_BASE="") to use Stripe itself.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_STANDIN = env.bool("STRIPE_STANDIN", default=not STRIPE_SECRET_KEY)
if STRIPE_STANDIN:
    INSTALLED_APPS.append("billing.stripe_standin")
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
