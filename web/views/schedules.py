"""Billing > Schedules: scheduled allocations (owner and admins only; managers and members 403)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpRequest

from orgs.selectors import billing_admin_membership
from schedules.forms import ScheduleForm
from schedules.models import Schedule, ScheduleStatus
from schedules.services import schedule_delete, schedule_pause, schedule_resume, schedule_save

HISTORY_LIMIT = 50


def _schedule_or_404(org, schedule_id: int) -> Schedule:
    schedule = (
        Schedule.objects.filter(org=org, pk=schedule_id)
        .exclude(status=ScheduleStatus.DELETED)
        .select_related("credit_type", "last_run")
        .first()
    )
    if schedule is None:
        raise Http404("No such schedule.")
    return schedule


@login_required
@require_GET
def schedules_page(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Every schedule with its next run, last run and result: a constant number of queries."""
    membership = billing_admin_membership(user=request.user, org_slug=org_slug)
    schedules = list(
        Schedule.objects.filter(org=membership.org)
        .exclude(status=ScheduleStatus.DELETED)
        .select_related("credit_type", "last_run")
        .annotate(selected_count=Count("members"))
        .order_by("-created_at", "-pk")
    )
    return render(request, "schedules/schedules.html", {"org": membership.org, "schedules": schedules})


def _form_page(request, org, form, schedule=None, status=200) -> HttpResponse:
    return render(request, "schedules/form.html", {"org": org, "form": form, "schedule": schedule}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def schedule_new(request: HttpRequest, org_slug: str) -> HttpResponse:
    membership = billing_admin_membership(user=request.user, org_slug=org_slug)
    org = membership.org
    if request.method == "GET":
        return _form_page(request, org, ScheduleForm(org=org))
    form = ScheduleForm(request.POST, org=org)
    if not form.is_valid():
        return _form_page(request, org, form, status=400)
    schedule = form.build()
    schedule.created_by = request.user
    key = schedule.request_key
    if key and Schedule.objects.filter(org=org, request_key=key).exists():
        return redirect("schedules:list", org.slug)  # a double-click or a retried POST: already created
    try:
        with transaction.atomic():
            schedule_save(schedule, form.cleaned_data.get("members"))
    except IntegrityError:
        if key and Schedule.objects.filter(org=org, request_key=key).exists():
            return redirect("schedules:list", org.slug)
        raise
    messages.success(request, f"Schedule “{schedule.name}” created.")
    return redirect("schedules:list", org.slug)


@login_required
@require_http_methods(["GET", "POST"])
def schedule_edit(request: HttpRequest, org_slug: str, schedule_id: int) -> HttpResponse:
    membership = billing_admin_membership(user=request.user, org_slug=org_slug)
    org = membership.org
    schedule = _schedule_or_404(org, schedule_id)
    if request.method == "GET":
        form = ScheduleForm(instance=schedule, org=org)
        return _form_page(request, org, form, schedule)
    form = ScheduleForm(request.POST, instance=schedule, org=org)
    if not form.is_valid():
        return _form_page(request, org, form, schedule, status=400)
    schedule_save(form.build(), form.cleaned_data.get("members"))
    messages.success(request, f"Schedule “{schedule.name}” saved.")
    return redirect("schedules:list", org.slug)


@login_required
@require_GET
def schedule_detail(request: HttpRequest, org_slug: str, schedule_id: int) -> HttpResponse:
    """One schedule and its runs, newest first."""
    membership = billing_admin_membership(user=request.user, org_slug=org_slug)
    schedule = _schedule_or_404(membership.org, schedule_id)
    runs = list(schedule.runs.order_by("-period_start")[:HISTORY_LIMIT])
    return render(request, "schedules/detail.html", {"org": membership.org, "schedule": schedule, "runs": runs})


def _action(request, org_slug, schedule_id, action, message) -> HttpResponse:
    membership = billing_admin_membership(user=request.user, org_slug=org_slug)
    schedule = _schedule_or_404(membership.org, schedule_id)
    action(schedule)
    messages.success(request, message.format(name=schedule.name))
    return redirect("schedules:list", membership.org.slug)


@login_required
@require_POST
def schedule_pause_view(request: HttpRequest, org_slug: str, schedule_id: int) -> HttpResponse:
    return _action(request, org_slug, schedule_id, schedule_pause, "Schedule “{name}” paused.")


@login_required
@require_POST
def schedule_resume_view(request: HttpRequest, org_slug: str, schedule_id: int) -> HttpResponse:
    return _action(request, org_slug, schedule_id, schedule_resume, "Schedule “{name}” resumed.")


@login_required
@require_POST
def schedule_delete_view(request: HttpRequest, org_slug: str, schedule_id: int) -> HttpResponse:
    return _action(request, org_slug, schedule_id, schedule_delete, "Schedule “{name}” deleted.")
