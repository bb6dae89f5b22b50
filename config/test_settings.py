"""The test suite's settings: the real ones, with the Stripe stand-in on (the tests pay through it) and, unless
one is given, a throwaway random SECRET_KEY (the real settings refuse to start without one when DEBUG is off).

The stand-in is on by default only with DEBUG, and the tests run with DEBUG off like production. The
variable is set before the settings are read, so servers and scripts the tests start inherit it.
STRIPE_STANDIN=false in the environment is respected.
"""

import os
import secrets

from django.conf import global_settings

os.environ.setdefault("STRIPE_STANDIN", "true")
if not os.environ.get("SECRET_KEY"):
    os.environ["SECRET_KEY"] = "pytest-" + secrets.token_urlsafe(50)  # exported: servers the tests start share it

from config.settings import *  # noqa: F403

# A "replica" alias that mirrors the test database (tests/core/test_replica.py reads through it), with replica reads
# off: pages read the primary unless a test turns REPLICA_READS on (those tests commit their data, so the
# replica's own connection sees it).
DATABASES["replica"] = {  # noqa: F405
    **DATABASES["default"],  # noqa: F405
    "CONN_MAX_AGE": 60,  # as config/settings.py builds it: no pool, a persistent connection
    "OPTIONS": {**{k: v for k, v in DATABASES["default"]["OPTIONS"].items() if k != "pool"}, "connect_timeout": 2},  # noqa: F405
    "TEST": {"MIRROR": "default"},
}
REPLICA_READS = False

# New passwords are hashed with MD5 in the tests: the real hasher (PBKDF2, 1.2M rounds) costs 0.4 s per user made
# with a password (factories, seed_demo) and per sign-in, which was most of the suite's time. PBKDF2 stays accepted.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *global_settings.PASSWORD_HASHERS]
