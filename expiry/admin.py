"""Staff's view of credit expiry: the notices sent, and "Run expiry now" (the daily run, on demand).

The run is `expiry.services.run_expiry` for today, the same call the hourly task and `manage.py expire_credits`
make: it moves credits only through the ledger primitive, and a second run (a double-click, two staff at once, the
task at the same moment) finds nothing left to take. Running it needs the permission to add ledger transfers
(`wallets.add_transfer`; superusers have it): it moves credits.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from core.money import credits_and_dollars
from expiry.models import ExpiryNotice
from expiry.services import due_now, run_expiry

RUN_PERMISSION = "wallets.add_transfer"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _day(day) -> str:
    return f"{day:%b} {day.day}, {day.year}"


@admin.register(ExpiryNotice)
class ExpiryNoticeAdmin(admin.ModelAdmin):
    list_display = ("expires_on", "org", "user", "org_credits", "own_credits", "created_at")
    list_filter = ("expires_on",)
    search_fields = ("org__name", "user__email")
    raw_id_fields = ("org", "user")
    readonly_fields = ("org", "user", "expires_on", "org_credits", "own_credits", "created_at")
    change_list_template = "admin/expiry/expirynotice/change_list.html"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        run = path("run/", self.admin_site.admin_view(self.run_view), name="expiry_expirynotice_run")
        return [run, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra = {"can_run_expiry": request.user.has_perm(RUN_PERMISSION), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def run_view(self, request):
        """GET: what is due today. POST: run the expiry for today, then say what it did."""
        if not request.user.has_perm(RUN_PERMISSION):
            raise PermissionDenied("Running the expiry moves credits: it needs the permission to add transfers.")
        if request.method == "POST":
            run = run_expiry()
            if run.pockets:
                self.message_user(
                    request,
                    f"Expired {credits_and_dollars(run.credits)} in {_count(run.pockets, 'pocket')} of "
                    f"{_count(run.orgs, 'org')} ({_count(run.transfers, 'Expiry transfer')}) for {_day(run.day)}.",
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request,
                    f"Nothing was due to expire on or before {_day(run.day)}: no credits moved.",
                    messages.INFO,
                )
            if run.busy:
                self.message_user(
                    request,
                    f"{_count(run.busy, 'org')} busy (pockets locked by other work): left for the next run.",
                    messages.WARNING,
                )
            return redirect("admin:expiry_expirynotice_run")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Run expiry now",
            "due": due_now(),
        }
        return TemplateResponse(request, "admin/expiry/run.html", context)
