from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from orgs.models import User


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    error_messages = {
        "invalid_login": "That email and password do not match an account. Check both and try again.",
        "inactive": "This account is inactive.",
    }


class SignUpForm(forms.Form):
    """Step 1: who wants an account. Never looks the email up, so its answer cannot tell whether it is taken;
    the password is chosen on the page the emailed link opens (step 2)."""

    name = forms.CharField(label="Name", max_length=150, required=False)
    email = forms.EmailField(
        label="Email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )

    def clean_email(self):
        return self.cleaned_data["email"].strip().lower()


class SignUpConfirmForm(forms.Form):
    """Step 2, behind the emailed link: the address is the link's, the person picks a name and password."""

    name = forms.CharField(label="Name", max_length=150, required=False)
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
