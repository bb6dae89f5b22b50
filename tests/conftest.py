import os

import pytest

from tests.factories import MembershipFactory, OrgFactory, UserFactory, fund

# Playwright's sync API runs an event loop in the test thread; Django's live server needs this to allow ORM calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


# The database is always PostgreSQL (config/settings.py refuses anything else; without DATABASE_URL `make test`
# starts the embedded one), so nothing is skipped for want of it: @pytest.mark.postgres is only a label.


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's Chromium, never a downloaded browser; flags keep it off this machine's closed network."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


@pytest.fixture(autouse=True)
def _reference_data(request):
    """Transactional tests flush the database, taking migration-seeded rows with it; put them back."""
    names = set(request.fixturenames)
    if request.node.get_closest_marker("django_db") or names & {"db", "transactional_db", "live_server"}:
        if "transactional_db" in names or "live_server" in names or _marker_transactional(request):
            request.getfixturevalue("transactional_db")
        else:
            request.getfixturevalue("db")
        from wallets.models import ensure_reference_data

        ensure_reference_data()


def _marker_transactional(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    return bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))


@pytest.fixture
def owner(db):
    return UserFactory(email="owner@example.com")


@pytest.fixture
def org(owner):
    return OrgFactory(name="Acme Quantum", owner=owner)


@pytest.fixture
def funded_org(org):
    fund(org, 10_000)
    return org


@pytest.fixture
def admin_membership(org):
    return MembershipFactory(org=org, role="admin")


@pytest.fixture
def manager_membership(org):
    return MembershipFactory(org=org, role="manager")


@pytest.fixture
def member_membership(org):
    return MembershipFactory(org=org, role="member")


@pytest.fixture
def other_org(db):
    return OrgFactory(name="Other Org", owner=UserFactory(email="other-owner@example.com"))


# In this process rate-limit counters live in local memory, as they did before the shared default: the query
# counts other tests pin are the app's own. The default, the database cache shared by every process, is tested
# in tests/core/test_ratelimit.py (in this process and across two processes) and is what the servers and
# workers that tests start use.
LOCAL_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}}


@pytest.fixture(autouse=True)
def _generous_rate_limits(settings):
    """Tests post far faster than people; the rate-limit test sets its own small limits."""
    from django.core.cache import cache

    settings.CACHES = LOCAL_CACHE
    settings.RATE_LIMIT_MONEY = (100_000, 60)
    settings.RATE_LIMIT_REQUESTS = (100_000, 60)
    cache.clear()


@pytest.fixture(autouse=True)
def _tasks_run_immediately(settings):
    """Tasks (emails) run as soon as they are enqueued, so a test asserts their effect (mail.outbox) directly;
    tests of the database queue and its worker set TASKS back themselves."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
