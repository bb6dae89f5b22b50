import hashlib
import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.views import LoginView, LogoutView
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.template import loader
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from core import ratelimit
from core.siteurl import absolute_url, site_base
from core.tasks import send_email
from orgs.forms import EmailAuthenticationForm, SignUpConfirmForm, SignUpForm
from orgs.middleware import SESSION_KEY
from orgs.models import Membership, MembershipStatus, User
from orgs.services import user_create

log = logging.getLogger("credits.accounts")

_SIGNUP_SALT = "orgs.signup"


class SignInView(LoginView):
    """After sign-in, `?next=` wins; otherwise the user lands in their workspace (landing_url)."""

    template_name = "orgs/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return landing_url(self.request)


def landing_url(request: HttpRequest) -> str:
    """First run: a user with one org lands in it; with several, in the one last chosen in the switcher
    (Membership.last_used_at; the oldest membership when none was chosen yet); with none, in Personal. The org
    becomes the session's workspace; an admin lands on its Billing page, anyone else on its wallet."""
    membership = (
        Membership.objects.select_related("org")
        .filter(user=request.user, status=MembershipStatus.ACTIVE)
        .order_by(F("last_used_at").desc(nulls_last=True), "joined_at", "pk")
        .first()
    )
    if membership is None:
        request.session.pop(SESSION_KEY, None)
        return reverse("wallet")
    request.session[SESSION_KEY] = membership.org_id
    return _workspace_home(membership)


def _workspace_home(membership: Membership) -> str:
    if membership.can_view_billing:
        return reverse("billing:page", args=[membership.org.slug])
    return reverse("wallet")


class SignOutView(LogoutView):
    pass


# ---------------------------------------------------------------- sign-up by emailed link
#
# Sign-up never says whether an email has an account: the form only takes the address (and a name), always
# answers "Check your inbox", and the email tells the owner of the address what to do next — a signed,
# expiring link to choose a password for a new address; sign in / reset password for a known one.
# Links live PASSWORD_RESET_TIMEOUT seconds (Django's setting for emailed links; 3 days by default).


class SignupLinkInvalid(Exception):
    def __init__(self, message: str, *, used: bool = False):
        super().__init__(message)
        self.message = message
        self.used = used


def signup_token(*, email: str, name: str = "", invitation: int | None = None) -> str:
    """A sign-up link's token. With `invitation`, it is the link the invitation page emails to an address with
    no account (web/views/members.py): it proves the address, and its page creates the account and joins."""
    data: dict = {"email": email, "name": name}
    if invitation is not None:
        data["invitation"] = invitation
    return signing.TimestampSigner(salt=_SIGNUP_SALT).sign_object(data, compress=True)


def signup_from_token(token: str) -> dict:
    """The {email, name} a link carries, or SignupLinkInvalid (tampered, expired, or already used)."""
    try:
        data = signing.TimestampSigner(salt=_SIGNUP_SALT).unsign_object(token, max_age=settings.PASSWORD_RESET_TIMEOUT)
    except signing.SignatureExpired as exc:
        raise SignupLinkInvalid(
            f"This sign-up link has expired (links work for {link_lifetime()}). Sign up again to get a new one."
        ) from exc
    except signing.BadSignature as exc:
        raise SignupLinkInvalid(
            "This sign-up link is not valid: it may be incomplete or altered. Copy the whole link from the email, "
            "or sign up again to get a new one."
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("email"), str) or not isinstance(data.get("name"), str):
        raise SignupLinkInvalid("This sign-up link is not valid. Sign up again to get a new one.")
    if "invitation" in data and (isinstance(data["invitation"], bool) or not isinstance(data["invitation"], int)):
        raise SignupLinkInvalid("This sign-up link is not valid. Sign up again to get a new one.")
    if User.objects.filter(email__iexact=data["email"]).exists():
        raise _used_link()
    return data


def _used_link() -> SignupLinkInvalid:
    return SignupLinkInvalid(
        "This sign-up link has already been used: the account exists. Sign in, or reset your password if you "
        "forgot it.",
        used=True,
    )


def link_lifetime() -> str:
    seconds = int(settings.PASSWORD_RESET_TIMEOUT)
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{seconds} seconds"


def send_signup_email(email: str, name: str) -> None:
    """The only place that looks the address up: its owner learns whether it has an account, nobody else.
    Enqueues the email (core.tasks.send_email), so the answer takes as long whichever email it is."""
    if User.objects.filter(email__iexact=email).exists():
        subject = "You already have a Credits account"
        body = (
            f"Someone (hopefully you) tried to create a Credits account for {email}, but this address already "
            f"has one, so nothing was created.\n\n"
            f"Sign in: {absolute_url(reverse('login'))}\n\n"
            f"Forgot your password? Choose a new one: {absolute_url(reverse('password_reset'))}\n\n"
            "If it wasn't you, you can ignore this email.\n"
        )
    else:
        link = absolute_url(reverse("signup_confirm", args=[signup_token(email=email, name=name)]))
        subject = "Finish creating your Credits account"
        body = (
            f"Someone (hopefully you) asked to create a Credits account for {email}.\n\n"
            f"Choose your password to finish (the link works for {link_lifetime()}, once):\n{link}\n\n"
            "If it wasn't you, you can ignore this email: no account is created without the link.\n"
        )
    send_email.enqueue(subject=subject, body=body, to=[email])


def _email_throttle(request: HttpRequest, email: str, purpose: str) -> HttpResponse | bool:
    """Sign-up and password reset email whoever types an address, so both are throttled, sharing budgets:
    per client IP (RATE_LIMIT_SIGNUP_IP: past it, the readable 429, which says nothing about the address)
    and per address (RATE_LIMIT_SIGNUP_EMAIL: past it, False — the caller answers exactly as usual and
    sends nothing, so the answer never tells whether the address has an account). True: send."""
    retry_after = ratelimit.hit_setting("RATE_LIMIT_SIGNUP_IP", ratelimit.client_ip(request))
    if retry_after:
        log.warning("%s email refused: too many from this client IP", purpose)
        return ratelimit.too_many_requests(request, retry_after)
    address = email.strip().lower()
    if ratelimit.hit_setting("RATE_LIMIT_SIGNUP_EMAIL", address):
        # Not the address itself (it may be a victim's): a digest an operator can match against one.
        digest = hashlib.sha256(address.encode()).hexdigest()[:12]
        log.warning("%s email not sent: too many for this address (sha256 %s…)", purpose, digest)
        return False
    return True


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Step 1. Whatever the address, a valid form gets the same "Check your inbox" page."""
    if request.user.is_authenticated:
        return redirect("wallet")
    form = SignUpForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            email, name = form.cleaned_data["email"], form.cleaned_data["name"]
            send = _email_throttle(request, email, "sign-up")
            if isinstance(send, HttpResponse):
                return send
            if send:
                transaction.on_commit(lambda: send_signup_email(email, name), robust=True)
            return render(request, "orgs/signup_sent.html", {"email": email, "lifetime": link_lifetime()})
        return render(request, "orgs/signup.html", {"form": form}, status=400)
    return render(request, "orgs/signup.html", {"form": form})


@require_http_methods(["GET", "POST"])
def signup_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """Step 2, behind the emailed link: choose a password; creates the account (and its Default wallet)."""
    if request.user.is_authenticated:
        return redirect("wallet")
    try:
        data = signup_from_token(token)
    except SignupLinkInvalid as exc:
        return render(request, "orgs/signup_invalid.html", {"message": exc.message, "used": exc.used}, status=400)
    email = data["email"]
    form = SignUpConfirmForm(
        request.POST if request.method == "POST" else None, email=email, initial={"name": data["name"]}
    )
    if request.method == "POST" and form.is_valid():
        try:
            user = user_create(email=email, password=form.cleaned_data["password"], name=form.cleaned_data["name"])
        except IntegrityError:  # the same link submitted twice at once: the other request made the account
            exc = _used_link()
            return render(request, "orgs/signup_invalid.html", {"message": exc.message, "used": True}, status=400)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome to Credits: your account is ready.")
        return redirect("wallet")
    return render(
        request,
        "orgs/signup_confirm.html",
        {"form": form, "email": email, "lifetime": link_lifetime()},
        status=400 if form.errors else 200,
    )


class _QueuedPasswordResetForm(PasswordResetForm):
    """Django's form, but the email goes through the task queue (core.tasks.send_email) like every other
    email: retried when the mail server fails, and no slower to answer for a known address."""

    def send_mail(
        self, subject_template_name, email_template_name, context, from_email, to_email, html_email_template_name=None
    ):
        # Plain text only: this view sets no html_email_template_name.
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        # Queued at once: a reset writes nothing, so there is no commit to wait for.
        send_email.enqueue(subject=subject, body=body, to=[to_email], from_email=from_email)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's view (its answer is the same whether or not the address has an account); links start like every
    other email's (core.siteurl: SITE_URL, else this request's ALLOWED_HOSTS-checked host)."""

    form_class = _QueuedPasswordResetForm

    @property
    def extra_email_context(self):
        return {"site_url": site_base(), "lifetime": link_lifetime()}

    def form_valid(self, form):
        send = _email_throttle(self.request, form.cleaned_data["email"], "password reset")
        if isinstance(send, HttpResponse):
            return send
        if not send:
            return HttpResponseRedirect(self.get_success_url())  # what Django answers after sending
        return super().form_valid(form)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    membership = request.workspace.membership
    if membership and membership.can_view_billing:
        return redirect("billing:page", membership.org.slug)
    return redirect("wallet")


@require_POST
@login_required
def workspace_switch(request: HttpRequest) -> HttpResponse:
    """Make Personal or one of the user's orgs the current workspace (kept in the session)."""
    choice = request.POST.get("workspace", "")
    if choice == "personal":
        request.session.pop(SESSION_KEY, None)
        return redirect("wallet")
    membership = (
        Membership.objects.select_related("org")
        .filter(user=request.user, org__slug=choice, status=MembershipStatus.ACTIVE)
        .first()
    )
    if membership is None:
        return render(request, "orgs/switch_error.html", status=404)
    request.session[SESSION_KEY] = membership.org_id
    # Remembered for the next sign-in (landing_url). One UPDATE; no other field is touched.
    Membership.objects.filter(pk=membership.pk).update(last_used_at=timezone.now())
    return redirect(_workspace_home(membership))
