"""Reporting's background work: the daily usage rollup (reporting.usage_page.roll_up_usage), enqueued every
15 minutes by `manage.py clock` (registered in reporting.apps). Safe twice at once and late: the rollup is an
upsert by (org, wallet, day) under an advisory lock, and it only ever rolls whole past days."""

from django.tasks import task

from reporting.usage_page import roll_up_usage as _roll_up


@task
def roll_up_usage() -> str | None:
    watermark = _roll_up()
    return watermark.isoformat() if watermark else None
