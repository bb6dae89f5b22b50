"""Forms of the Members page, invitations and Settings > Member defaults. They parse; members.services decides."""

from django import forms
from django.contrib.auth import password_validation

from core.validators import no_control_characters
from members.services import BULK_INVITE_MAX_BYTES
from orgs.models import (
    DEFAULT_ALLOCATION_MAX,
    INVITE_ALLOCATION_MAX,
    SEAT_CREDITS_MAX,
    MemberDefaults,
    Role,
    User,
)
from wallets.forms import CreditsField

ROLE_CHOICES = [(Role.MEMBER, "Member"), (Role.MANAGER, "Manager"), (Role.ADMIN, "Admin")]
STATUS_FILTERS = [("", "Any status"), ("active", "Active"), ("pending", "Pending invite"), ("suspended", "Suspended")]


class MemberFilterForm(forms.Form):
    q = forms.CharField(label="Name or email", required=False, max_length=100)
    role = forms.ChoiceField(label="Role", required=False, choices=[("", "Any role"), *Role.choices])
    status = forms.ChoiceField(label="Status", required=False, choices=STATUS_FILTERS)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "filter_%s")  # the invite form on the same page also has a Role
        super().__init__(*args, **kwargs)

    def values(self) -> dict:
        if self.is_valid():
            return self.cleaned_data
        return {"q": "", "role": "", "status": ""}


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email", max_length=254)
    role = forms.ChoiceField(label="Role", choices=ROLE_CHOICES)
    credit_allocation = CreditsField(
        label="Credit allocation (optional)",
        required=False,
        min_value=0,
        max_value=INVITE_ALLOCATION_MAX,
        help_text="Org-allocated credits they get from the org wallet when they accept.",
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "placeholder": "0"}),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "invite_%s")
        super().__init__(*args, **kwargs)


class BulkInviteForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="Up to 100 rows of email,role (role: Member, Manager or Admin). A header row is optional.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        name = (upload.name or "").lower()
        if not name.endswith((".csv", ".txt")):
            raise forms.ValidationError("That file is not a CSV: upload a .csv file with two columns, email,role.")
        if upload.size > BULK_INVITE_MAX_BYTES:
            raise forms.ValidationError("That file is too large: upload at most 100 rows of email,role.")
        return upload


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=ROLE_CHOICES)


class MemberDefaultsForm(forms.ModelForm):
    seat_assignment_credits = CreditsField(
        label="Seat assignment credits",
        min_value=0,
        max_value=SEAT_CREDITS_MAX,
        help_text=f"Credits moved from the org wallet to a member when they get a seat (0 to {SEAT_CREDITS_MAX:,}).",
    )
    default_credit_allocation = CreditsField(
        label="Default credit allocation",
        min_value=0,
        max_value=DEFAULT_ALLOCATION_MAX,
        help_text=f"Credits each new member gets from the org wallet when they join (0 to {DEFAULT_ALLOCATION_MAX:,}).",
    )

    class Meta:
        model = MemberDefaults
        fields = [
            "auto_assign_default_role",
            "default_role",
            "auto_assign_seats",
            "seat_assignment_credits",
            "default_credit_allocation",
        ]


class AcceptForm(forms.Form):
    """Sign in on the invitation page (the address has an account); the email is the invitation's."""

    password = forms.CharField(label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


def _name_field() -> forms.CharField:
    return forms.CharField(label="Name", max_length=150, required=False, validators=[no_control_characters])


class InviteSignUpForm(forms.Form):
    """The invitation page for an address with no account: ask for a link by email, which proves the address
    is theirs (whoever else opens the invitation link can only have that email sent to the invitee)."""

    name = _name_field()


class InviteConfirmForm(forms.Form):
    """Behind the emailed link: the invitee picks a name and password; the account is made and joins at once."""

    name = _name_field()
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
