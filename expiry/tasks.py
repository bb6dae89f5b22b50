"""The expiry tasks, enqueued every hour by `manage.py clock` (ExpiryConfig.ready). Both are keyed by the day, so
the repeats in between are no-ops: safe to run twice at once, late, or after a crash."""

from dataclasses import asdict

from django.tasks import task

from expiry.services import announce_expiring, run_expiry


@task()
def expire_due_credits() -> dict:
    """Expire every credit whose day has come (expiry.services.run_expiry), once per pocket and day."""
    result = asdict(run_expiry())
    result["day"] = result["day"].isoformat()
    return result


@task()
def announce_expiring_credits() -> dict:
    """Email owners, admins and members about credits expiring within 7 days, once each."""
    result = announce_expiring()
    return {"today": result.today.isoformat(), "notices": result.notices}
