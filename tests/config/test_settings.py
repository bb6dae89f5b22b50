"""Settings refuse to run a server with DEBUG off on a key everyone knows."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFUSAL = "SECRET_KEY is not set"


def _load_settings(**env) -> subprocess.CompletedProcess:
    """Import config.settings in a fresh process (not under pytest) with `env` over the current environment.
    An empty SECRET_KEY counts as unset, and also wins over a SECRET_KEY line in a developer's .env."""
    base = {k: v for k, v in os.environ.items() if k not in {"PYTEST_VERSION", "PYTEST_CURRENT_TEST"}}
    return subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print('DEBUG', s.DEBUG)"],
        cwd=ROOT,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_refuse_to_load_with_debug_off_and_no_secret_key():
    result = _load_settings(DEBUG="false", SECRET_KEY="")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: " + REFUSAL), result.stderr


def test_the_production_settings_know_nothing_of_pytest():
    """Only config/test_settings.py makes a throwaway key: config.settings under pytest still refuses."""
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=ROOT,
        env=os.environ | {"DEBUG": "false", "SECRET_KEY": "", "PYTEST_VERSION": "9"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and REFUSAL in result.stderr


def test_settings_refuse_the_public_development_key_with_debug_off():
    from config.settings import _DEV_SECRET

    result = _load_settings(DEBUG="false", SECRET_KEY=_DEV_SECRET)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is the public development key" in result.stderr


def test_settings_load_with_a_real_key_or_with_debug_on():
    assert _load_settings(DEBUG="false", SECRET_KEY="k" * 50).stdout.strip() == "DEBUG False"
    assert _load_settings(DEBUG="true", SECRET_KEY="").stdout.strip() == "DEBUG True"  # make run


def test_the_deploy_checks_never_see_the_development_key():
    from django.conf import settings

    from config.settings import _DEV_SECRET

    assert not settings.DEBUG and settings.SECRET_KEY != _DEV_SECRET  # this test run: a throwaway key


COOKIE_SETTINGS = (
    "from config import settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY,"
    " s.SESSION_COOKIE_SAMESITE, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_PRELOAD, s.SECURE_SSL_REDIRECT)"
)


def test_https_makes_cookies_secure_sends_hsts_for_a_year_and_redirects_to_https():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSION_", "CSRF_", "SECURE_", "HTTPS"))}

    def load(**extra) -> str:
        result = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-c", COOKIE_SETTINGS],
            cwd=ROOT,
            env=env | {"DEBUG": "false", "SECRET_KEY": "k" * 50} | extra,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert load(HTTPS="true") == "True True True Lax 31536000 True True"
    assert load() == "False False True Lax 31536000 False False"  # plain http (local): cookies must still work
