"""Sign up, sign in with email, sign out, and the workspace switcher."""

import re
import time
from unittest import mock

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from orgs.middleware import SESSION_KEY
from orgs.models import Membership, User
from tests.factories import MembershipFactory, UserFactory
from wallets.models import Wallet
from web.views import accounts as views

pytestmark = pytest.mark.django_db


def _sign_up(client, capture, email, name=""):
    """Step 1 of sign-up with the after-commit email actually sent."""
    with capture(execute=True):
        return client.post(reverse("signup"), {"name": name, "email": email})


def _link(message) -> str:
    match = re.search(r"https?://[^/\s]+(/accounts/signup/confirm/[^/\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def test_sign_up_emails_a_link_that_creates_the_user_with_a_default_wallet_and_signs_in(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    response = _sign_up(client, django_capture_on_commit_callbacks, "Ada@Example.com", name="Ada")
    assert response.status_code == 200
    assert "Check your inbox" in response.content.decode()
    assert not User.objects.filter(email="ada@example.com").exists()  # nothing exists until the link is used
    assert client.get(reverse("wallet")).status_code == 302
    [message] = mailoutbox
    assert message.to == ["ada@example.com"]
    link = _link(message)
    assert message.body.count("http") == 1  # one link (its host: tests/core/test_siteurl.py)

    page = client.get(link)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'value="ada@example.com"' in html and 'value="Ada"' in html  # the address is the link's; name kept

    response = client.post(link, {"name": "Ada Lovelace", "password": "a-long-unusual-passphrase"})
    assert response.status_code == 302 and response.url == reverse("wallet")
    user = User.objects.get(email="ada@example.com")
    assert user.name == "Ada Lovelace" and user.check_password("a-long-unusual-passphrase")
    wallet = Wallet.objects.get(user=user, kind="user")
    assert wallet.name == "Default wallet"
    assert client.get(reverse("wallet")).status_code == 200
    assert int(client.session["_auth_user_id"]) == user.pk


def test_sign_up_with_taken_email_does_not_say_whose_it_is(client, mailoutbox, django_capture_on_commit_callbacks):
    """The page is the same for a taken and a free address; only the address's owner learns, by email."""
    taken = UserFactory(email="taken@example.com", password="the-old-passphrase-42")
    users_before = User.objects.count()
    answers = {}
    for email in ("taken@example.com", "free@example.com"):
        response = _sign_up(Client(), django_capture_on_commit_callbacks, email)
        answers[email] = (response.status_code, _normalized(response.content.decode(), email))
    assert answers["taken@example.com"] == answers["free@example.com"]
    assert answers["taken@example.com"][0] == 200
    assert "Could not create" not in answers["taken@example.com"][1]
    assert "Check your inbox" in answers["taken@example.com"][1]
    assert User.objects.count() == users_before  # nothing was created or changed by step 1
    taken.refresh_from_db()
    assert taken.check_password("the-old-passphrase-42")

    to_taken, to_free = mailoutbox
    assert to_taken.to == ["taken@example.com"] and to_free.to == ["free@example.com"]
    assert "already has one" in to_taken.body
    assert "/accounts/signup/confirm/" not in to_taken.body  # no link that could make a second account
    assert reverse("login") in to_taken.body and reverse("password_reset") in to_taken.body
    assert "/accounts/signup/confirm/" in to_free.body


def _normalized(html: str, email: str) -> str:
    """The page, minus what differs between any two requests (the address typed, the CSRF token)."""
    html = html.replace(email, "EMAIL")
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
    return re.sub(r'"X-CSRFToken": "[^"]+"', "", html)


def test_a_used_link_creates_nothing_and_changes_nothing(client, mailoutbox, django_capture_on_commit_callbacks):
    _sign_up(client, django_capture_on_commit_callbacks, "once@example.com")
    link = _link(mailoutbox[0])
    assert client.post(link, {"password": "a-long-unusual-passphrase"}).status_code == 302
    client.post(reverse("logout"))
    users_before = User.objects.count()

    again = client.get(link)
    assert again.status_code == 400
    assert "already been used" in again.content.decode()
    replay = client.post(link, {"name": "Mallory", "password": "another-long-passphrase"})
    assert replay.status_code == 400 and "already been used" in replay.content.decode()
    assert User.objects.count() == users_before
    user = User.objects.get(email="once@example.com")
    assert user.check_password("a-long-unusual-passphrase") and user.name == ""
    assert Wallet.objects.filter(user=user).count() == 1
    assert client.get(reverse("wallet")).status_code == 302  # the replay signed nobody in


def test_a_tampered_link_creates_nothing(client, mailoutbox, django_capture_on_commit_callbacks):
    _sign_up(client, django_capture_on_commit_callbacks, "tamper@example.com")
    link = _link(mailoutbox[0])
    token = link.rstrip("/").rsplit("/", 1)[1]
    forged = views.signup_token(email="victim@example.com")[: -len(token.rsplit(":", 1)[1])] + token.rsplit(":", 1)[1]
    users_before = User.objects.count()
    for bad in (token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), forged, "not-a-token", token[:20]):
        url = reverse("signup_confirm", args=[bad])
        assert client.get(url).status_code == 400
        response = client.post(url, {"password": "a-long-unusual-passphrase"})
        assert response.status_code == 400
        assert "not valid" in response.content.decode()
    assert User.objects.count() == users_before
    assert client.get(reverse("wallet")).status_code == 302


def test_an_expired_link_says_so_and_creates_nothing(client, settings):
    settings.PASSWORD_RESET_TIMEOUT = 3 * 24 * 3600
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 3 * 24 * 3600 - 60):
        token = views.signup_token(email="late@example.com")
    url = reverse("signup_confirm", args=[token])
    assert client.get(url).status_code == 400
    response = client.post(url, {"password": "a-long-unusual-passphrase"})
    assert response.status_code == 400
    assert "expired" in response.content.decode() and "3 days" in response.content.decode()
    assert not User.objects.filter(email="late@example.com").exists()


def test_sign_up_bad_input_is_refused_and_sends_nothing(client, mailoutbox, django_capture_on_commit_callbacks):
    empty = client.post(reverse("signup"), {})
    assert empty.status_code == 400 and "This field is required" in empty.content.decode()
    for data in ({"email": ""}, {"email": "not-an-email"}, {"email": "a\x00b@example.com"}, {"name": "x" * 151}):
        response = _sign_up(client, django_capture_on_commit_callbacks, **{"email": "", **data})
        assert response.status_code == 400, data
        assert "Check your inbox" not in response.content.decode()
    assert mailoutbox == []


def test_a_weak_password_on_the_link_page_creates_nothing(client, mailoutbox, django_capture_on_commit_callbacks):
    _sign_up(client, django_capture_on_commit_callbacks, "weak@example.com")
    link = _link(mailoutbox[0])
    for data in ({}, {"password": ""}, {"password": "123"}, {"password": "password"}, {"password": "weak@example.com"}):
        response = client.post(link, data)
        assert response.status_code == 400
        assert 'class="field-error"' in response.content.decode()
    assert not User.objects.filter(email="weak@example.com").exists()
    assert client.get(link).status_code == 200  # the link still works after a refused password


def test_a_mail_failure_still_answers_the_same_page(client, django_capture_on_commit_callbacks, caplog):
    with mock.patch("core.tasks.mailers") as mailers:
        mailers.default.send_messages.side_effect = OSError("smtp down")
        response = _sign_up(client, django_capture_on_commit_callbacks, "down@example.com")
    assert response.status_code == 200 and "Check your inbox" in response.content.decode()
    assert "Could not send email 'Finish creating your Credits account'" in caplog.text
    assert not User.objects.filter(email="down@example.com").exists()


def test_signed_in_people_are_sent_to_their_wallet_from_sign_up(client, owner):
    client.force_login(owner)
    assert client.get(reverse("signup")).url == reverse("wallet")
    assert client.get(reverse("signup_confirm", args=[views.signup_token(email="x@example.com")])).status_code == 302
    assert not User.objects.filter(email="x@example.com").exists()
    assert "Reset your password" in client.get(reverse("password_reset")).content.decode()  # its page, signed in too


def test_password_reset_answers_the_same_for_any_address_and_resets_a_known_one(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    UserFactory(email="known@example.com", password="the-old-passphrase-42")
    login_page = client.get(reverse("login")).content.decode()
    assert reverse("password_reset") in login_page
    answers = []
    for email in ("known@example.com", "nobody@example.com"):
        response = Client().post(reverse("password_reset"), {"email": email}, follow=True)
        answers.append((response.status_code, response.redirect_chain, _normalized(response.content.decode(), email)))
    assert answers[0] == answers[1]
    assert answers[0][1] == [(reverse("password_reset_done"), 302)]
    assert "Check your inbox" in answers[0][2]
    [message] = mailoutbox
    assert message.to == ["known@example.com"]
    match = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", message.body)
    assert match and match.group(0).startswith("http://testserver/accounts/reset/")  # the request's host
    form_page = client.get(match.group(1), follow=True)
    html = form_page.content.decode()
    assert "Choose a new password" in html and 'name="new_password1"' in html
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": "a-brand-new-passphrase", "new_password2": "a-brand-new-passphrase"})
    assert done.status_code == 302 and done.url == reverse("password_reset_complete")
    signed_in = client.post(reverse("login"), {"username": "known@example.com", "password": "a-brand-new-passphrase"})
    assert signed_in.status_code == 302
    # The link works once.
    reused = Client().get(match.group(1), follow=True)
    assert "not valid" in reused.content.decode()


def test_sign_in_with_email_and_password_then_sign_out(client):
    UserFactory(email="sam@example.com", password="pw-correct-horse-battery")
    response = client.post(reverse("login"), {"username": "sam@example.com", "password": "pw-correct-horse-battery"})
    assert response.status_code == 302
    assert client.get(reverse("wallet")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("wallet")).status_code == 302


def test_wrong_password_gets_a_clear_error(client):
    UserFactory(email="sam@example.com")
    response = client.post(reverse("login"), {"username": "sam@example.com", "password": "nope"})
    assert "do not match an account" in response.content.decode()


def test_failed_sign_ins_lock_out_every_spelling_of_the_email(client):
    """Sign-in finds the account whatever the letter case (PostgreSQL's UPPER(a) = UPPER(b), which also folds
    the dotless i, U+0131), so the lockout counts failures per account, not per spelling: five failures, each typed
    differently, lock out every spelling, and the right password no longer gets in from that client."""
    UserFactory(email="erin@example.com", password="the-right-passphrase")
    typed = ["erin@example.com", "ERIN@example.com", "Erin@Example.com", "eRiN@EXAMPLE.COM", "erin@EXAMPLE.com"]
    for spelling in typed:
        client.post(reverse("login"), {"username": spelling, "password": "wrong"})
    for spelling in [*typed, "ERIN@EXAMPLE.COM", "  Erin@example.COM ", "erın@example.com", "ERıN@example.com"]:
        response = client.post(reverse("login"), {"username": spelling, "password": "the-right-passphrase"})
        assert response.status_code == 429, spelling
        assert "Too many failed sign-ins" in response.content.decode()
        assert client.get(reverse("wallet")).status_code == 302, spelling  # not signed in
    # Another client (IP) is not locked out, and signs in with any spelling.
    other = Client(REMOTE_ADDR="198.51.100.20")
    assert (
        other.post(reverse("login"), {"username": "ERIN@example.com", "password": "the-right-passphrase"}).status_code
        == 302
    )


def test_sign_in_starts_a_new_session_in_an_httponly_lax_cookie(client):
    """A session id known before sign-in (fixation) is worthless after it; scripts cannot read the cookie and
    other sites' forms do not send it."""
    UserFactory(email="sam@example.com", password="pw-correct-horse-battery")
    client.get(reverse("login"))
    session = client.session
    session["seen"] = True
    session.save()
    before = session.session_key
    client.post(reverse("login"), {"username": "sam@example.com", "password": "pw-correct-horse-battery"})
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie.value and cookie.value != before
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


def test_sign_in_authenticates_with_the_email_lowercased(rf):
    from orgs.forms import EmailAuthenticationForm

    user = UserFactory(email="dana@example.com", password="the-right-passphrase")
    request = rf.post(reverse("login"))
    form = EmailAuthenticationForm(request, data={"username": " DANA@Example.COM ", "password": "the-right-passphrase"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["username"] == "dana@example.com"
    assert form.get_user() == user


def test_workspace_switcher_lists_orgs_and_switches(client, org, owner):
    client.force_login(owner)
    html = client.get(reverse("wallet")).content.decode()
    assert '<details class="switcher" data-switcher>' in html  # a disclosure that works without JavaScript
    assert "Switch workspace. Current: " in html
    assert ">Personal<" in html.replace("\n", "") or "Personal" in html
    assert org.name in html
    response = client.post(reverse("workspace_switch"), {"workspace": org.slug})
    assert response.status_code == 302
    assert response.url == reverse("billing:page", args=[org.slug])
    assert client.session[SESSION_KEY] == org.pk
    html = client.get(reverse("wallet")).content.decode()
    assert f'<span class="switcher-name">{org.name}</span>' in html
    assert reverse("billing:page", args=[org.slug]) in html  # sidebar shows Billing to the owner
    client.post(reverse("workspace_switch"), {"workspace": "personal"})
    assert SESSION_KEY not in client.session


def test_an_org_page_shows_that_org_as_the_workspace_without_touching_the_session(client, org, other_org, owner):
    """A link straight to an org's page (an email, a bookmark) shows that org in the switcher; a GET never
    rewrites the session, so only the switcher changes the workspace other pages use."""
    MembershipFactory(org=other_org, user=owner, role="admin")
    client.force_login(owner)
    client.post(reverse("workspace_switch"), {"workspace": other_org.slug})
    html = client.get(reverse("billing:page", args=[org.slug])).content.decode()
    assert f'<span class="switcher-name">{org.name}</span>' in html
    assert client.session[SESSION_KEY] == other_org.pk
    html = client.get(reverse("wallet")).content.decode()
    assert f'<span class="switcher-name">{other_org.name}</span>' in html


def test_an_org_page_of_an_org_you_left_does_not_become_the_workspace(client, org, other_org):
    outsider = MembershipFactory(org=other_org, role="admin").user
    client.force_login(outsider)
    assert client.get(reverse("billing:page", args=[org.slug])).status_code == 404
    html = client.get(reverse("wallet")).content.decode()
    assert '<span class="switcher-name">Personal</span>' in html


def test_member_switching_lands_on_wallet_without_billing_link(client, org, member_membership):
    client.force_login(member_membership.user)
    response = client.post(reverse("workspace_switch"), {"workspace": org.slug})
    assert response.url == reverse("wallet")
    html = client.get(reverse("wallet")).content.decode()
    assert reverse("billing:page", args=[org.slug]) not in html


def test_switching_to_an_org_you_are_not_in_is_404(client, org, other_org):
    outsider = MembershipFactory(org=other_org).user
    client.force_login(outsider)
    assert client.post(reverse("workspace_switch"), {"workspace": org.slug}).status_code == 404


def test_switch_requires_csrf(org, owner):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(owner)
    assert csrf_client.post(reverse("workspace_switch"), {"workspace": org.slug}).status_code == 403


def test_wallet_page_shows_balance_by_type_and_funding_org(client, funded_org, member_membership):
    from wallets.models import CreditType
    from wallets.services import org_transfer_to_member

    org_transfer_to_member(
        org=funded_org,
        membership_id=member_membership.pk,
        credit_type=CreditType.objects.get(slug="org-allocated"),
        amount=321,
        memo="For the demo",
    )
    client.force_login(member_membership.user)
    html = client.get(reverse("wallet")).content.decode()
    assert 'aria-labelledby="wallet-heading"' in html
    assert ">321<" in html
    assert funded_org.name in html
    assert "For the demo" in html


def test_createsuperuser_users_get_a_default_wallet_too():
    from django.core.management import call_command

    call_command("createsuperuser", email="root@example.com", interactive=False, verbosity=0)
    assert Wallet.objects.filter(user__email="root@example.com", kind="user").count() == 1


# ---------------------------------------------------------------- email flooding: sign-up and password reset


def _reset(client, email):
    return client.post(reverse("password_reset"), {"email": email}, follow=True)


def _answer(response, email):
    return (
        response.status_code,
        getattr(response, "redirect_chain", []),
        response.get("Retry-After"),
        _normalized(response.content.decode(), email),
    )


def test_an_address_gets_at_most_the_limit_of_emails_then_the_same_answer_and_nothing_sent(
    settings, mailoutbox, django_capture_on_commit_callbacks, caplog
):
    """Per address (sign-up and reset share the budget): past it, the page is the same and no mail goes out,
    so nobody can flood an inbox, and the answer still never tells whether the address has an account."""
    settings.RATE_LIMIT_SIGNUP_EMAIL = (2, 86_400)
    settings.RATE_LIMIT_SIGNUP_IP = (1_000, 86_400)
    UserFactory(email="known@example.com")
    first, throttled = {}, {}
    for email in ("known@example.com", "unknown@example.com"):
        first[email] = _answer(_sign_up(Client(), django_capture_on_commit_callbacks, email), email)
        _sign_up(Client(), django_capture_on_commit_callbacks, email.upper())  # the same address, however typed
        throttled[email] = _answer(_sign_up(Client(), django_capture_on_commit_callbacks, email), email)
    assert [m.to for m in mailoutbox] == [["known@example.com"]] * 2 + [["unknown@example.com"]] * 2
    assert throttled["known@example.com"] == throttled["unknown@example.com"] == first["unknown@example.com"]
    assert throttled["known@example.com"][0] == 200 and "Check your inbox" in throttled["known@example.com"][3]
    assert "sign-up email not sent" in caplog.text and "unknown@example.com" not in caplog.text

    # Password reset draws on the same budget: spent for both, so nothing more is sent, with the same answer.
    mailoutbox.clear()
    answers = {email: _answer(_reset(Client(), email), email) for email in ("known@example.com", "nobody@example.com")}
    assert mailoutbox == []
    fresh = _answer(_reset(Client(), "fresh@example.com"), "fresh@example.com")
    assert answers["known@example.com"] == answers["nobody@example.com"] == fresh
    assert fresh[:2] == (200, [(reverse("password_reset_done"), 302)])


def test_password_reset_emails_a_known_address_at_most_the_limit(settings, mailoutbox, caplog):
    settings.RATE_LIMIT_SIGNUP_EMAIL = (2, 86_400)
    settings.RATE_LIMIT_SIGNUP_IP = (1_000, 86_400)
    UserFactory(email="known@example.com")
    answers = [_answer(_reset(Client(), "known@example.com"), "known@example.com") for _ in range(4)]
    assert [m.to for m in mailoutbox] == [["known@example.com"]] * 2
    assert answers[0] == answers[1] == answers[2] == answers[3]
    assert "password reset email not sent" in caplog.text


def test_one_client_ip_gets_a_readable_429_past_its_limit_and_sends_nothing(
    settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.RATE_LIMIT_SIGNUP_EMAIL = (1_000, 86_400)
    settings.RATE_LIMIT_SIGNUP_IP = (3, 86_400)
    UserFactory(email="known@example.com")
    flooder = Client(REMOTE_ADDR="203.0.113.7")
    for i in range(2):
        assert _sign_up(flooder, django_capture_on_commit_callbacks, f"new{i}@example.com").status_code == 200
    assert _reset(flooder, "known@example.com").status_code == 200  # the reset shares the IP's budget
    assert len(mailoutbox) == 3

    refused = {}
    for email in ("known@example.com", "unknown@example.com"):
        for response in (_sign_up(flooder, django_capture_on_commit_callbacks, email), _reset(flooder, email)):
            assert response.status_code == 429
            html = response.content.decode()
            assert "Too many requests" in html and f"Try again in {response['Retry-After']} seconds" in html
            assert int(response["Retry-After"]) >= 1
        # The seconds left in the window may tick between the two requests; all else is the same.
        status, _, _, html = _answer(response, email)
        refused[email] = (status, html.replace(f"Try again in {response['Retry-After']} seconds", ""))
    assert refused["known@example.com"] == refused["unknown@example.com"]  # says nothing about the address
    assert len(mailoutbox) == 3  # nothing more was sent

    # Bad input is still answered as such (nothing to send), and another client is not affected.
    assert flooder.post(reverse("signup"), {"email": "not-an-email"}).status_code == 400
    other = Client(REMOTE_ADDR="198.51.100.9")
    assert _sign_up(other, django_capture_on_commit_callbacks, "unknown@example.com").status_code == 200
    assert mailoutbox[-1].to == ["unknown@example.com"] and len(mailoutbox) == 4


# ---------------------------------------------------------------- first run: where sign-in lands


def _sign_in(client, user, password="pw-correct-horse-battery", next_url=None):
    url = reverse("login") + (f"?next={next_url}" if next_url else "")
    return client.post(url, {"username": user.email, "password": password})


def test_sign_in_without_an_org_lands_in_personal(client):
    user = UserFactory(email="solo@example.com", password="pw-correct-horse-battery")
    response = _sign_in(client, user)
    assert response.status_code == 302 and response.url == reverse("wallet")
    assert SESSION_KEY not in client.session


def test_sign_in_with_one_org_lands_in_it_admin_on_billing(client, org, owner):
    owner.set_password("pw-correct-horse-battery")
    owner.save()
    response = _sign_in(client, owner)
    assert response.url == reverse("billing:page", args=[org.slug])
    assert client.session[SESSION_KEY] == org.pk


def test_sign_in_with_one_org_lands_a_member_on_the_org_wallet_with_request_credits(client, org, member_membership):
    user = member_membership.user
    user.set_password("pw-correct-horse-battery")
    user.save()
    response = _sign_in(client, user)
    assert response.url == reverse("wallet")
    assert client.session[SESSION_KEY] == org.pk
    html = client.get(response.url).content.decode()
    assert f'<span class="switcher-name">{org.name}</span>' in html
    assert "Request credits" in html


def test_sign_in_with_several_orgs_lands_in_the_last_one_chosen(client, org, other_org, owner):
    owner.set_password("pw-correct-horse-battery")
    owner.save()
    MembershipFactory(org=other_org, user=owner, role="member")
    # Never chosen: the org joined first.
    assert _sign_in(client, owner).url == reverse("billing:page", args=[org.slug])
    client.post(reverse("workspace_switch"), {"workspace": other_org.slug})
    client.post(reverse("logout"))
    assert _sign_in(client, owner).url == reverse("wallet")
    assert client.session[SESSION_KEY] == other_org.pk
    client.post(reverse("workspace_switch"), {"workspace": org.slug})
    client.post(reverse("logout"))
    assert _sign_in(client, owner).url == reverse("billing:page", args=[org.slug])
    assert client.session[SESSION_KEY] == org.pk


def test_sign_in_skips_an_org_the_user_was_removed_from(client, org, other_org, owner):

    owner.set_password("pw-correct-horse-battery")
    owner.save()
    gone = MembershipFactory(org=other_org, user=owner, role="admin")
    client.force_login(owner)
    client.post(reverse("workspace_switch"), {"workspace": other_org.slug})
    Membership.objects.filter(pk=gone.pk).update(status="removed")
    client.post(reverse("logout"))
    assert _sign_in(client, owner).url == reverse("billing:page", args=[org.slug])


def test_next_still_wins_over_the_landing(client, org, owner):
    owner.set_password("pw-correct-horse-battery")
    owner.save()
    response = _sign_in(client, owner, next_url=reverse("wallet"))
    assert response.url == reverse("wallet")
