"""The Transfer dialog on the Billing page's Balance card: one member, selected members, or all members.

Thin views: parse the form (transfers.forms), call one domain verb (wallets.services), render the dialog
body. Opened with htmx into ``<dialog id="transfer-dialog">``; without JS the same URLs are a plain page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpRequest, trigger_client_event

from core.errors import DomainError
from core.money import credits_and_dollars, dollars
from core.ratelimit import rate_limited
from orgs.selectors import billing_admin_membership
from transfers.forms import (
    MODE_KEYS,
    MODES,
    RESULTS_LIMIT,
    SELECT_THRESHOLD,
    SELECTED_LIMIT,
    BulkForm,
    CreditsField,
    TransferForm,
    active_members,
    form_for,
    org_holdings,
    parse_ids,
    search_members,
)
from wallets.draw import SOONEST
from wallets.errors import InvalidAmount, MemberNotActive
from wallets.expiring import has_expiring, org_pocket_days, plan_draw
from wallets.models import Wallet
from wallets.services import org_bulk_transfer, org_transfer_to_member
from web.forms import SendFirstForm
from web.toast import add_toast

TEMPLATE = "billing/transfer.html"


@dataclass(frozen=True, slots=True)
class Done:
    """What a finished transfer says: in the dialog's result view, the toast, and (no JS) the message."""

    message: str  # "Transferred 3,000 Org-allocated credits ($30.00) to 3 members, 1,000 credits ($10.00) each."
    total_text: str
    credit_type: str
    to: str
    each_text: str = ""  # bulk only


def _mode(value) -> str:
    return value if value in MODE_KEYS else "one"


def _members_context(org, mode: str, params, member_count: int) -> dict:
    """The recipient list for the mode: a capped, searchable slice, plus what is already chosen."""
    q = (params.get("q") or "").strip()[:200]
    context: dict = {"q": q, "results_limit": RESULTS_LIMIT}
    if mode == "one":
        chosen_ids = parse_ids([params.get("recipient", "")])[:1]
        context["use_select"] = member_count <= SELECT_THRESHOLD
        limit = SELECT_THRESHOLD if context["use_select"] else RESULTS_LIMIT
    elif mode == "selected":
        chosen_ids = parse_ids(params.getlist("member"))[:SELECTED_LIMIT]
        context["match_all"] = params.get("match_all") in ("on", "true", "1")
        context["match_count"] = search_members(org, q).count() if q else member_count
        limit = RESULTS_LIMIT
    else:
        return context
    chosen = list(search_members(org, "").filter(pk__in=chosen_ids)) if chosen_ids else []
    results = list(search_members(org, q).exclude(pk__in=chosen_ids)[:limit])
    context.update(chosen=chosen, results=results, chosen_ids=chosen_ids)
    return context


def _send_first(params) -> SendFirstForm:
    """The "Send first" picker, bound to what was sent (the soonest-expiring first when nothing was)."""
    return SendFirstForm(params if "order" in params else None)


def _order(send_first: SendFirstForm) -> str:
    return send_first.chosen() if send_first.is_bound and send_first.is_valid() else SOONEST


SHOWN_NAMES = 3  # the preview names this many of the selected members, then "and N more"


def _preview(
    form: TransferForm, org, params, member_count: int, pocket_days: dict, order: str = SOONEST
) -> dict | None:
    """What the transfer would do, from whatever is filled in so far (never an error: the form reports those).
    With it, the expiring credits it would send (wallets.expiring.plan_draw: as wallets.draw splits them)."""
    holding = form.holding()
    if holding is None:
        return None
    try:
        amount = CreditsField(required=False).clean(params.get("amount", ""))
    except Exception:  # an unparsable amount simply has no preview yet
        amount = None
    preview = {"holding": holding, "amount": amount, "before": holding.balance, "mode": form.transfer_mode}
    if form.transfer_mode == "one":
        ids = parse_ids([params.get("recipient", "")])
        member = active_members(org).select_related("user").filter(pk=ids[0]).first() if ids else None
        preview["to"] = member.user.display_name if member else None
        count = 1
    elif form.transfer_mode == "all":
        count = member_count
    elif params.get("match_all") in ("on", "true", "1"):
        count = search_members(org, params.get("q", "")).count()
    else:
        # Who gets the credits, named before the click (the same one query the count was).
        ids = parse_ids(params.getlist("member"))
        chosen = active_members(org).filter(pk__in=ids).select_related("user").order_by("pk") if ids else []
        names = [m.user.display_name for m in chosen]
        count, preview["names"] = len(names), names[:SHOWN_NAMES]
        preview["more"] = max(0, count - SHOWN_NAMES)
    preview["count"] = count
    preview["before_usd"] = dollars(holding.balance)
    total = amount * count if amount else 0
    preview.update(total=total, total_text=credits_and_dollars(total))
    if amount:
        after = holding.balance - total
        preview.update(
            amount_text=credits_and_dollars(amount),
            after=after,
            after_usd=dollars(after),
            shortfall=max(0, total - holding.balance),
        )
        if not preview["shortfall"]:
            preview["expiring"] = plan_draw(pocket_days.get(holding.credit_type.pk, ()), total, order)
    return preview


def _send_first_context(form: TransferForm, params, pocket_days: dict, send_first=None) -> dict:
    """The picker is offered when the org wallet holds expiring credits of the chosen credit type."""
    holding = form.holding()
    days = pocket_days.get(holding.credit_type.pk, ()) if holding else ()
    send_first = send_first or _send_first(params)
    shown = has_expiring(days) or bool(send_first.is_bound and send_first.errors)  # an error is always shown
    return {"send_first": send_first, "show_send_first": shown}


def _context(request, membership, form: TransferForm, params, *, member_count: int, pocket_days: dict, **extra) -> dict:
    org = membership.org
    first = _send_first_context(form, params, pocket_days, **extra)
    return {
        **first,
        "org": org,
        "membership": membership,
        "mode": form.transfer_mode,
        "modes": MODES,
        "form": form,
        "holdings": form.holdings,
        "member_count": member_count,
        "preview": _preview(form, org, params, member_count, pocket_days, _order(first["send_first"])),
        "dialog": bool(request.htmx),
        **_members_context(org, form.transfer_mode, params, member_count),
    }


def _render(request, context: dict) -> HttpResponse:
    template = f"{TEMPLATE}#transfer-body" if request.htmx else TEMPLATE
    return render(request, template, context)


def _setup(request, org_slug: str):
    membership = billing_admin_membership(user=request.user, org_slug=org_slug)
    org = membership.org
    holdings = org_holdings(Wallet.objects.for_org(org))
    member_count = active_members(org).count()
    return membership, holdings, member_count


@require_GET
@login_required
def transfer_dialog(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The Transfer dialog (htmx) or page (no JS), with a fresh idempotency key."""
    membership, holdings, member_count = _setup(request, org_slug)
    form = form_for(_mode(request.GET.get("mode")), org=membership.org, holdings=holdings)
    days = org_pocket_days(membership.org.pk)
    return _render(
        request, _context(request, membership, form, request.GET, member_count=member_count, pocket_days=days)
    )


@require_GET
@login_required
def transfer_members(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Type-ahead: the recipient radios (One member) or checkboxes (Selected) matching ``q``."""
    membership, _holdings, member_count = _setup(request, org_slug)
    mode = _mode(request.GET.get("mode"))
    context = {"org": membership.org, "mode": mode, **_members_context(membership.org, mode, request.GET, member_count)}
    return render(request, "billing/_transfer_members.html", context)


@require_GET
@login_required
def transfer_preview(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The live preview: from, to, type, amount (and total), org balance before and after, any shortfall, the
    expiring credits it would send. With ``part=send-first`` (the credit type changed): the "Send first" picker."""
    membership, holdings, member_count = _setup(request, org_slug)
    form = form_for(_mode(request.GET.get("mode")), request.GET, org=membership.org, holdings=holdings)
    days = org_pocket_days(membership.org.pk)
    if request.GET.get("part") == "send-first":
        return render(request, "billing/_send_first.html", _send_first_context(form, request.GET, days))
    preview = _preview(form, membership.org, request.GET, member_count, days, _order(_send_first(request.GET)))
    # oob: the sticky footer's total is updated from the same reply (hx-swap-oob), so it never disagrees.
    context = {"org": membership.org, "preview": preview, "oob": True}
    return render(request, "billing/_transfer_preview.html", context)


@require_POST
@login_required
@rate_limited("RATE_LIMIT_MONEY")
def transfer_submit(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Move the credits (or, without JS, refresh the preview / member search). Exactly once per form."""
    membership, holdings, member_count = _setup(request, org_slug)
    org = membership.org
    mode = _mode(request.POST.get("mode"))
    action = request.POST.get("action", "")
    days = org_pocket_days(org.pk)
    if action == "search":
        # A search (the no-JS Search button) is not a submit: redisplay what was typed, without validating it.
        form = form_for(mode, org=org, holdings=holdings)
        form.initial.update({key: value for key, value in request.POST.items() if key in form.fields})
        context = _context(request, membership, form, request.POST, member_count=member_count, pocket_days=days)
        return _render(request, context)
    form = form_for(mode, request.POST, org=org, holdings=holdings)
    send_first = _send_first(request.POST)
    first_ok = not send_first.is_bound or send_first.is_valid()  # an unknown order: refused next to the picker
    if action != "preview" and form.is_valid() and first_ok:
        try:
            result = _perform(form, org=org, actor=request.user, order=_order(send_first))
        except DomainError as exc:
            form.add_error(_error_field(form, exc), exc.message)
        else:
            return _done(request, org, mode, result)
    form.is_valid()  # a preview shows what is wrong too
    context = _context(
        request, membership, form, request.POST, member_count=member_count, pocket_days=days, send_first=send_first
    )
    return _render(request, context)


def _done(request: HttpRequest, org, mode: str, result: Done) -> HttpResponse:
    """After a transfer: with htmx, the dialog's result view plus a toast and a Balance card refresh; without JS,
    back to Billing with the same sentence as a message."""
    if not request.htmx:
        messages.success(request, result.message)
        return redirect("billing:page", org_slug=org.slug)
    context = {"org": org, "mode": mode, "result": result, "dialog": True}
    response = render(request, f"{TEMPLATE}#transfer-body", context)
    trigger_client_event(response, "balances-changed")
    return add_toast(response, result.message)


def _perform(form: TransferForm, *, org, actor, order: str = SOONEST) -> Done:
    """Call the one domain verb for the mode; returns what the result view and the toast say."""
    data = form.cleaned_data
    holding = form.holding()
    ct = holding.credit_type
    amount = data["amount"]
    if isinstance(form, BulkForm):
        posted = org_bulk_transfer(
            org=org,
            credit_type=ct,
            amount_per_member=amount,
            membership_ids=form.membership_ids,
            actor=actor,
            memo=data.get("reason", ""),
            idempotency_key=form.ledger_key(),
            order=order,
        )
        total = posted.transfer.amount
        count = total // amount
        to = f"{count:,} {'member' if count == 1 else 'members'}"
        each = f", {credits_and_dollars(amount)} each"
    else:
        org_transfer_to_member(
            org=org,
            membership_id=data["recipient"],
            credit_type=ct,
            amount=amount,
            actor=actor,
            memo=data.get("message", ""),
            idempotency_key=form.ledger_key(),
            order=order,
        )
        total, each = amount, ""
        to = form.recipient_membership.user.display_name
    return Done(
        message=f"Transferred {total:,} {ct.name} credits ({dollars(total)}) to {to}{each}.",
        total_text=credits_and_dollars(total),
        credit_type=ct.name,
        to=to,
        each_text=credits_and_dollars(amount) if each else "",
    )


def _error_field(form: TransferForm, exc: DomainError) -> str | None:
    """Which field a domain error belongs next to (None: at the top of the form, e.g. a shortfall)."""
    if isinstance(exc, MemberNotActive):
        return "recipient" if "recipient" in form.fields else "member"
    if isinstance(exc, InvalidAmount):
        return "amount"
    return None
