"""The New / Edit schedule form: whole credits within limits, errors next to the field, nothing saved."""

from __future__ import annotations

import uuid

from django import forms

from orgs.models import Membership, MembershipStatus, Organization, Role
from schedules.models import EVERY_DAYS_MAX, SCHEDULE_AMOUNT_MAX, Cadence, Mode, Recipients, Schedule
from wallets.forms import CreditsField
from wallets.models import CreditType


class MemberChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Membership) -> str:
        return obj.user.display_name


class ScheduleForm(forms.ModelForm):
    amount = CreditsField(
        max_value=SCHEDULE_AMOUNT_MAX,
        label="Credits (N)",
        help_text=f"Whole credits per member, 1 to {SCHEDULE_AMOUNT_MAX:,}.",
    )
    role = forms.ChoiceField(choices=[("", "—"), *Role.choices], required=False, label="Role")
    members = MemberChoiceField(
        queryset=Membership.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Selected members",
    )
    credit_type = forms.ModelChoiceField(queryset=CreditType.objects.all(), empty_label=None, label="Credit type")
    day_of_month = forms.IntegerField(
        required=False, label="Day of month", help_text="1 to 31; days 29 to 31 run on a shorter month's last day."
    )
    every_days = forms.IntegerField(required=False, label="Every N days", help_text=f"1 to {EVERY_DAYS_MAX}.")
    start_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), label="Start date")
    end_date = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}), required=False, label="End date (optional)"
    )
    request_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)

    class Meta:
        model = Schedule
        fields = [
            "name",
            "recipients",
            "role",
            "members",
            "credit_type",
            "mode",
            "amount",
            "cadence",
            "day_of_month",
            "every_days",
            "start_date",
            "end_date",
            "return_unused",
        ]
        widgets = {"recipients": forms.RadioSelect, "mode": forms.RadioSelect}
        labels = {"return_unused": "Return unused credits to the org at the end of each period"}

    def __init__(self, *args, org: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.org = org
        self.fields["members"].queryset = (
            Membership.objects.filter(org=org, status=MembershipStatus.ACTIVE).select_related("user").order_by("pk")
        )
        self.fields["recipients"].choices = Recipients.choices
        self.fields["mode"].choices = Mode.choices
        self.fields["cadence"].choices = Cadence.choices
        if self.instance.pk:
            self.initial["amount"] = str(self.instance.amount)
        elif not self.is_bound:
            self.initial["request_key"] = uuid.uuid4().hex
            self.initial.setdefault("day_of_month", 1)

    def clean_name(self) -> str:
        name = (self.cleaned_data.get("name") or "").strip()
        if not name:
            raise forms.ValidationError("Give the schedule a name.")
        return name

    def clean(self):
        data = super().clean()
        recipients, cadence = data.get("recipients"), data.get("cadence")
        if recipients == Recipients.ROLE and not data.get("role"):
            self.add_error("role", "Pick the role whose members get the credits.")
        if recipients == Recipients.SELECTED and not data.get("members") and "members" not in self.errors:
            self.add_error("members", "Pick at least one member.")
        if cadence == Cadence.MONTHLY:
            day = data.get("day_of_month")
            if day is None and "day_of_month" not in self.errors:
                self.add_error("day_of_month", "Enter the day of the month (1 to 31).")
            elif day is not None and not 1 <= day <= 31:
                self.add_error("day_of_month", "Enter a day from 1 to 31.")
        if cadence == Cadence.EVERY_N_DAYS:
            every = data.get("every_days")
            if every is None and "every_days" not in self.errors:
                self.add_error("every_days", "Enter how many days apart the runs are.")
            elif every is not None and not 1 <= every <= EVERY_DAYS_MAX:
                self.add_error("every_days", f"Enter a number of days from 1 to {EVERY_DAYS_MAX}.")
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            self.add_error("end_date", "The end date must be on or after the start date.")
        return data

    def build(self) -> Schedule:
        """The unsaved schedule, with the fields the chosen cadence and recipients do not use cleared."""
        schedule = super().save(commit=False)
        schedule.org = self.org
        if schedule.cadence != Cadence.MONTHLY:
            schedule.day_of_month = None
        if schedule.cadence != Cadence.EVERY_N_DAYS:
            schedule.every_days = None
        if schedule.recipients != Recipients.ROLE:
            schedule.role = ""
        if not schedule.pk:
            schedule.request_key = self.cleaned_data.get("request_key") or ""
        return schedule
