from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from core.validators import no_control_characters
from orgs.models import User


def sign_in_lockout_key(email: str) -> str:
    """The one key sign-in failures are counted under (django-axes, AXES_USERNAME_CALLABLE), whatever way the
    email was typed. Sign-in finds the account with PostgreSQL's UPPER(a) = UPPER(b), which folds more than
    ASCII case (a dotless i, U+0131, or a long s, U+017F, passes the email field and matches i or s), so the
    key folds the same way: upper, then lower. Two spellings that reach one account always share one key;
    folding more than the match does only joins counters, which locks out sooner, never later."""
    return email.strip().upper().lower()


def axes_username(request, credentials) -> str | None:
    """AXES_USERNAME_CALLABLE: the lockout key of the email being tried, from the credentials authenticate()
    got, or from the posted form when axes checks a request before authenticating."""
    if credentials:
        value = credentials.get(settings.AXES_USERNAME_FORM_FIELD)
    else:
        value = getattr(request, "data", request.POST).get(settings.AXES_USERNAME_FORM_FIELD)
    return sign_in_lockout_key(value) if isinstance(value, str) else value


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    error_messages = {
        "invalid_login": "That email and password do not match an account. Check both and try again.",
        "inactive": "This account is inactive.",
    }

    def clean_username(self):
        # Accounts are stored lowercased (UserManager), and the lookup is case-insensitive: authenticate with
        # the stored spelling, so every layer that sees the credentials (axes' failure counter, signals, logs)
        # sees one spelling of the address.
        return self.cleaned_data["username"].strip().lower()


class SignUpForm(forms.Form):
    """Step 1: who wants an account. Never looks the email up, so its answer cannot tell whether it is taken;
    the password is chosen on the page the emailed link opens (step 2)."""

    name = forms.CharField(label="Name", max_length=150, required=False, validators=[no_control_characters])
    email = forms.EmailField(
        label="Email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )

    def clean_email(self):
        return self.cleaned_data["email"].strip().lower()


class SignUpConfirmForm(forms.Form):
    """Step 2, behind the emailed link: the address is the link's, the person picks a name and password."""

    name = forms.CharField(label="Name", max_length=150, required=False, validators=[no_control_characters])
    password = forms.CharField(label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password"):
            try:
                password_validation.validate_password(
                    cleaned["password"], User(email=self.email, name=cleaned.get("name", ""))
                )
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return cleaned
