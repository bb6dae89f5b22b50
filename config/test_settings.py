"""The test suite's settings: the real ones, with the Stripe stand-in on (the tests pay through it) and, unless
one is given, a throwaway random SECRET_KEY (the real settings refuse to start without one when DEBUG is off).

The stand-in is on by default only with DEBUG, and the tests run with DEBUG off like production. The
variable is set before the settings are read, so servers and scripts the tests start inherit it.
STRIPE_STANDIN=false in the environment is respected.
"""

import os
import secrets

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
