"""Every page an admin and a member of the demo org can open (and the signed-out pages), at a phone's 390x844 and a
laptop's 1280x800: nothing scrolls sideways, nothing spills out of its card, and axe-core (vendored,
tests/browser/vendor/axe-core/) finds no serious or critical accessibility violation.

With SCREENSHOTS=1 (`make screenshots`) each page is also saved, full length, as
tests/browser/screenshots/<page>-<size>.png before the checks run (so a failing page still gets its picture)."""

import os
from pathlib import Path

import pytest
from django.urls import NoReverseMatch, reverse

from orgs.models import Organization
from purchases.models import Purchase, PurchaseStatus
from schedules.models import Schedule
from tests.browser.conftest import sign_in, switch_workspace
from wallets.models import Transfer, TransferKind

pytestmark = [pytest.mark.browser]

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SHOTS = Path(__file__).parent / "screenshots"
SIZES = {"phone": (390, 844), "desktop": (1280, 800)}
ORG = "quantum-lab"


def _transfer_detail() -> str:
    org = Organization.objects.get(slug=ORG)
    transfer = (
        Transfer.objects.filter(org=org, kind=TransferKind.BULK_TRANSFER).order_by("-pk").first()
        or Transfer.objects.filter(org=org).order_by("-pk").first()
    )
    return reverse("billing:transfer_detail", args=[ORG, transfer.pk])


def _schedule() -> str:
    """The demo's "Monthly allocation" schedule (seed_demo sets it up, not yet due)."""
    schedule = Schedule.objects.get(org__slug=ORG, name="Monthly allocation")
    return reverse("schedules:detail", args=[ORG, schedule.pk])


def _schedule_edit() -> str:
    schedule = Schedule.objects.get(org__slug=ORG, name="Monthly allocation")
    return reverse("schedules:edit", args=[ORG, schedule.pk])


def _purchase() -> str:
    """The receipt of a paid purchase when receipts exist, else the purchase's own page."""
    purchase = Purchase.objects.filter(org__slug=ORG, status=PurchaseStatus.PAID).order_by("-pk").first()
    purchase = purchase or Purchase.objects.filter(org__slug=ORG).order_by("-pk").first()
    try:
        return reverse("billing:purchase_receipt", args=[ORG, purchase.pk])
    except NoReverseMatch:
        return reverse("billing:purchase", args=[ORG, purchase.pk])


# (page id, who: admin/member/None = signed out, path or a function giving it, personal workspace?)
PAGES = [
    ("admin-wallet", "admin", "/wallet/", False),
    ("admin-personal-wallet", "admin", "/wallet/", True),
    ("billing", "admin", f"/orgs/{ORG}/billing/", False),
    ("billing-requests", "admin", f"/orgs/{ORG}/billing/requests/", False),
    ("transactions", "admin", f"/orgs/{ORG}/transactions/", False),
    ("usage", "admin", f"/orgs/{ORG}/billing/usage/", False),
    ("transfer-detail", "admin", _transfer_detail, False),
    ("transfer-page", "admin", f"/orgs/{ORG}/billing/transfer/", False),
    ("schedules", "admin", f"/orgs/{ORG}/billing/schedules/", False),
    ("schedule-new", "admin", f"/orgs/{ORG}/billing/schedules/new/", False),
    ("schedule-detail", "admin", _schedule, False),
    ("schedule-edit", "admin", _schedule_edit, False),
    ("alerts-settings", "admin", f"/orgs/{ORG}/billing/alerts/", False),
    ("expiry-settings", "admin", f"/orgs/{ORG}/billing/expiry/", False),
    ("auto-top-up", "admin", f"/orgs/{ORG}/billing/auto-top-up/", False),
    ("members", "admin", f"/orgs/{ORG}/members/", False),
    ("seats", "admin", f"/orgs/{ORG}/seats/", False),
    ("member-defaults", "admin", f"/orgs/{ORG}/settings/member-defaults/", False),
    ("api-keys", "admin", f"/orgs/{ORG}/settings/api-keys/", False),
    ("buy-credits", "admin", f"/orgs/{ORG}/billing/buy/", False),
    ("purchases", "admin", f"/orgs/{ORG}/billing/purchases/", False),
    ("purchase-receipt", "admin", _purchase, False),
    ("member-wallet", "member", "/wallet/", False),
    ("member-request-new", "member", f"/orgs/{ORG}/requests/new/", False),
    ("member-personal-wallet", "member", "/wallet/", True),
    ("login", None, "/accounts/login/", False),
    ("signup", None, "/accounts/signup/", False),
    ("password-reset", None, "/accounts/password_reset/", False),
    ("not-found", None, "/no-such-page/", False),
]
USERS = {"admin": "admin@example.com", "member": "carol@example.com"}

# Horizontal overflow of the document, and elements that stick out of their .card. An element inside a scroll or
# clip container (below the card) is judged by that container, which is itself checked against the card;
# visually-hidden text (clipped to 1px) and what is not rendered (closed dialogs and disclosures) are skipped.
CARD_OVERFLOW_JS = """() => {
  const out = [];
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.classList.length ? '.' + [...el.classList].join('.') : '') +
    (el.textContent.trim() ? ' "' + el.textContent.trim().replace(/\\s+/g, ' ').slice(0, 40) + '"' : '');
  for (const card of document.querySelectorAll('.card')) {
    const c = card.getBoundingClientRect();
    if (!c.width || !c.height) continue;
    for (const el of card.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      // Not rendered: a closed <details>' content keeps a layout box (content-visibility), display: none, etc.
      if (r.width < 2 || r.height < 2 || !el.checkVisibility({visibilityProperty: true})) continue;
      const style = getComputedStyle(el);
      if (style.position === 'fixed' || style.visibility === 'hidden') continue;
      let inner = false;
      for (let a = el.parentElement; a && a !== card; a = a.parentElement) {
        const s = getComputedStyle(a);
        if (s.overflowX !== 'visible' || s.overflowY !== 'visible' || s.clip !== 'auto' || a.tagName === 'DIALOG') {
          inner = true;
          break;
        }
      }
      if (inner) continue;
      if (el.tagName === 'TABLE') {  // a table keeps within the card's padding, not only its border
        const cs = getComputedStyle(card);
        const left = c.left + parseFloat(cs.paddingLeft), right = c.right - parseFloat(cs.paddingRight);
        if (r.left < left - 1 || r.right > right + 1) {
          out.push(name(el).slice(0, 60) + ' runs into the padding of ' + name(card).slice(0, 60) + ' by ' +
            Math.round(Math.max(left - r.left, r.right - right)) + 'px');
          continue;
        }
      }
      if (r.left < c.left - 1 || r.right > c.right + 1 || r.top < c.top - 1 || r.bottom > c.bottom + 1) {
        out.push(name(el) + ' sticks out of ' + name(card).slice(0, 60) + ' by ' +
          Math.round(Math.max(c.left - r.left, r.right - c.right, c.top - r.top, r.bottom - c.bottom)) + 'px');
      }
    }
  }
  return out;
}"""

AXE_RUN_JS = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => v.impact + ' ' + v.id + ': ' + v.help + ' — ' +
      v.nodes.slice(0, 5).map((n) => n.target.join(' ')).join(', ') + (v.nodes.length > 5 ? ' …' : ''));
}"""


# At 1280 px a table fits its card: nothing in a card scrolls sideways (on a phone a scroll box is allowed).
CARD_SCROLL_JS = """() => [...document.querySelectorAll('.card *')]
  .filter((el) => el.checkVisibility() && ['auto', 'scroll'].includes(getComputedStyle(el).overflowX) &&
    el.scrollWidth > el.clientWidth + 1)
  .map((el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.classList.length ? '.' + [...el.classList].join('.') : '') +
    ' scrolls sideways inside its card (' + el.scrollWidth + 'px of content in ' + el.clientWidth + 'px)')"""


def _problems(page, size) -> list[str]:
    problems = []
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    if scroll_width > inner_width:
        problems.append(f"the page scrolls sideways: scrollWidth {scroll_width} > innerWidth {inner_width}")
    problems += page.evaluate(CARD_OVERFLOW_JS)
    if size == "desktop":
        problems += page.evaluate(CARD_SCROLL_JS)
    # Run in the page through the DevTools protocol: the app's CSP (rightly) refuses an injected <script> tag.
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    problems += page.evaluate(AXE_RUN_JS)
    return problems


@pytest.mark.parametrize(("page_id", "who", "path", "personal"), PAGES, ids=[p[0] for p in PAGES])
def test_page_fits_and_has_no_serious_axe_violation(page, live_server, demo, page_id, who, path, personal):
    """Both sizes in one test (one seed, one sign-in); every failure names the page and the size."""
    if who:
        sign_in(page, live_server, USERS[who])
        if personal:
            switch_workspace(page, "Personal")
    url = path() if callable(path) else path
    failures = []
    for size, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        response = page.goto(f"{live_server.url}{url}")
        assert response.status == (404 if page_id == "not-found" else 200), f"{page_id} {size}: {url}"
        page.wait_for_load_state("networkidle")
        if os.environ.get("SCREENSHOTS"):
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / f"{page_id}-{size}.png"), full_page=True)
        failures += [f"{page_id} at {size} ({width}x{height}), {url}: {problem}" for problem in _problems(page, size)]
    assert not failures, "\n".join(failures)
