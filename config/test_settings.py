"""The test suite's settings: the real ones, with the Stripe stand-in on (the tests pay through it).

The stand-in is on by default only with DEBUG, and the tests run with DEBUG off like production. The
variable is set before the settings are read, so servers and scripts the tests start inherit it.
STRIPE_STANDIN=false in the environment is respected.
"""

import os

os.environ.setdefault("STRIPE_STANDIN", "true")

from config.settings import *  # noqa: F403
