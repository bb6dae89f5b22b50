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
    name = forms.CharField(label="Name", max_length=150, required=False)
    email = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean_email(self):
        email = self.cleaned_data["email"].lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("Could not create an account with this email. If it is yours, sign in.")
        return email

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password"):
            password_validation.validate_password(
                cleaned["password"], User(email=cleaned.get("email", ""), name=cleaned.get("name", ""))
            )
        return cleaned
