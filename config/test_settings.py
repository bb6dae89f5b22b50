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
