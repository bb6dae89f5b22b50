"""The expiry task: enqueued every minute by `manage.py clock` (HoldsConfig.ready), run by the task worker."""

from django.tasks import task

from holds.services import expire_due_holds


@task()
def expire_holds() -> dict:
    """Release every open hold whose time is up (holds.services.expire_due_holds); safe to run twice or late."""
    return {"released": expire_due_holds()}
