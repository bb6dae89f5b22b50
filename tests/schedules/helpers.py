from datetime import date

from schedules.models import Schedule
from schedules.services import schedule_save
from wallets.models import CreditType


def make_schedule(org, *, members=None, today: date | None = None, **fields) -> Schedule:
    values = {
        "name": "Monthly allowance",
        "recipients": "all",
        "credit_type": CreditType.objects.get(slug="org-allocated"),
        "amount": 100,
        "mode": "add",
        "cadence": "monthly",
        "day_of_month": 1,
        "start_date": date(2026, 1, 1),
    }
    values.update(fields)
    return schedule_save(Schedule(org=org, **values), members, today=today or values["start_date"])
