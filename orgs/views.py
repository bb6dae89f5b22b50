from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from orgs.forms import EmailAuthenticationForm, SignUpForm
from orgs.middleware import SESSION_KEY
from orgs.models import Membership, MembershipStatus
from orgs.services import user_create


class SignInView(LoginView):
    template_name = "orgs/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True


class SignOutView(LogoutView):
    pass


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("wallet")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = user_create(
            email=form.cleaned_data["email"], password=form.cleaned_data["password"], name=form.cleaned_data["name"]
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("wallet")
    return render(request, "orgs/signup.html", {"form": form})


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
    if membership.can_view_billing:
        return redirect(reverse("billing:page", args=[membership.org.slug]))
    return redirect("wallet")
