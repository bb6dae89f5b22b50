"""Usage page: who used the org's credits in a range of days, the org's usage per day, and its CSV export.

Thin views: check who may look (owner, admins, managers; members 403; other orgs 404), parse the range with
reporting.usage_page.parse_range, call the selectors (one query each, whatever the org's size), render.
Reads go to the replica when core.replica.read_alias allows it; the permission check reads the primary.
"""

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpRequest, push_url

from core.replica import read_alias, run_read, stream_read
from orgs.selectors import billing_viewer_membership
from reporting import usage_page
from reporting.usage import usage_chart
from web.views.billing import TABS

CHART_WIDE_AFTER = 31  # days: a longer range gets a wider chart box


def _chart(days):
    width = 360 if len(days) <= CHART_WIDE_AFTER else 720
    chart = usage_chart(days, width=width)
    step = max(1, -(-len(days) // (7 if width == 360 else 12)))  # about 7 (12) day labels, never crowded
    labelled = {d.day for d in chart.days[::-1][::step]}  # counted back from the last day, which is labelled
    return chart, labelled


@login_required
@require_GET
@vary_on_headers("HX-Request")  # the same URL answers a partial to htmx: never cache one for the other
def usage_view(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The Usage page. Bad dates answer 400 with the message next to the field and no figures."""
    membership = billing_viewer_membership(user=request.user, org_slug=org_slug)
    org = membership.org
    rng, errors = usage_page.parse_range(request.GET)
    context = {
        "org": org,
        "membership": membership,
        "presets": usage_page.PRESETS,
        "tab": "usage",
        "tabs": TABS,  # the Billing tabs, as plain links (no badge: its count is the Billing page's query)
        "errors": errors,
        "form": {
            "range": request.GET.get("range") or ("custom" if request.GET.get("from") else rng.preset),
            "from": request.GET.get("from", "") if errors else rng.first.isoformat(),
            "to": request.GET.get("to", "") if errors else rng.last.isoformat(),
        },
        "rng": rng,
    }
    status = 400 if errors else 200
    if not errors:
        alias = read_alias(request)
        cursor = (request.GET.get("cursor") or "").strip() or None

        try:
            page = run_read(alias, lambda using: usage_page.members_page(org.pk, rng, cursor=cursor, using=using))
        except usage_page.CursorError:
            context["cursor_error"] = "That page link is not valid any more; here is the first page."
            cursor = None
            page = run_read(alias, lambda using: usage_page.members_page(org.pk, rng, using=using))
        days = page.days
        chart, labelled = _chart(days)
        params = rng.as_params()
        context.update(
            page=page,
            days=days,
            chart=chart,
            labelled_days=labelled,
            range_query=urlencode(params),
            next_query=urlencode({**params, "cursor": page.next_cursor}) if page.next_cursor else "",
            is_first_page=cursor is None,
        )
    template = "billing/usage.html"
    if request.htmx and request.htmx.target == "usage-results" and not request.htmx.history_restore_request:
        response = render(request, template + "#usage-results", context, status=status)
        used = [(k, v) for k, values in request.GET.lists() for v in values if v.strip()]
        return push_url(response, request.path + ("?" + urlencode(used) if used else ""))
    return render(request, template, context, status=status)


@login_required
@require_GET
def usage_export(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Member x day rows of the range as CSV, streamed by one COPY statement (flat memory for any size).
    Bad dates send the user back to the page, which explains what is wrong."""
    membership = billing_viewer_membership(user=request.user, org_slug=org_slug)
    org = membership.org
    rng, errors = usage_page.parse_range(request.GET)
    if errors:
        return redirect(reverse("usage:page", args=[org.slug]) + "?" + request.GET.urlencode())
    stream = stream_read(read_alias(request), lambda using: usage_page.copy_usage_csv(org.pk, rng, using=using))
    response = StreamingHttpResponse(stream, content_type="text/csv")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = (
        f'attachment; filename="{org.slug}-usage-{rng.first.isoformat()}-to-{rng.last.isoformat()}-{stamp}.csv"'
    )
    response["Cache-Control"] = "no-store"
    return response
