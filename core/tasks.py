"""Background tasks: every email leaves through `send_email`, run by the task worker (`manage.py db_worker`).

Callers build the message in the request (they have the rows at hand) and enqueue it with
`transaction.on_commit(...)`, so a rolled-back change sends nothing, and a slow or failing mail server
never holds a request or a row lock open.

A failed send is tried again later, after 1, 5 and 30 minutes (`RETRY_DELAYS`), each try a new task
result that carries its attempt number. An attempt that schedules a retry ends its own result SUCCESSFUL,
its return value saying which attempt comes next and why, so FAILED in Django admin (Tasks Database
Backend > Task results) means "given up": the last try raises and the worker records the traceback.
Backends that cannot run a task later (the immediate backend of the tests) get no retries: the first
failure is final.
"""

import logging
from datetime import timedelta

from django.core.mail import EmailMessage, mailers
from django.tasks import TaskContext, task
from django.utils import timezone

log = logging.getLogger("credits.tasks")

# Wait before each retry; a message is tried at most len(RETRY_DELAYS) + 1 times.
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30))
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


@task(takes_context=True)
def send_email(
    context: TaskContext,
    subject: str,
    body: str,
    to: list[str],
    from_email: str | None = None,
    attempt: int = 1,
) -> dict:
    """Send one plain-text email through the default mailer (from DEFAULT_FROM_EMAIL unless given)."""
    message = EmailMessage(subject=subject, body=body, from_email=from_email, to=to)
    try:
        mailers.default.send_messages([message])
    except Exception as exc:
        current = context.task_result.task
        if attempt >= MAX_ATTEMPTS or not current.get_backend().supports_defer:
            log.error("Could not send email %r to %s (attempt %s): %r; giving up", subject, to, attempt, exc)
            raise
        run_after = timezone.now() + RETRY_DELAYS[attempt - 1]
        retry = current.using(run_after=run_after).enqueue(
            subject=subject, body=body, to=to, from_email=from_email, attempt=attempt + 1
        )
        log.warning(
            "Could not send email %r to %s (attempt %s): %r; retrying at %s", subject, to, attempt, exc, run_after
        )
        return {"sent": False, "error": repr(exc), "retry": retry.id, "run_after": run_after.isoformat()}
    return {"sent": True, "attempt": attempt}
