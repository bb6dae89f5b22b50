import uuid

from django import forms
from django.contrib import admin, messages
from django.shortcuts import render

from orgs.models import Organization
from wallets.errors import InvalidExpiry, WalletError
from wallets.forms import CreditsField
from wallets.models import CreditType, Entry, OutstandingBalance, Pocket, Transfer, Wallet
from wallets.selectors import pocket_balance
from wallets.services import check_expiry_day, org_grant_promo


class ReadOnlyAdmin(admin.ModelAdmin):
    """Money is never edited by hand: the ledger primitive is the only writer."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CreditType)
class CreditTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "sort_order", "draw_order"]
    prepopulated_fields = {"slug": ["name"]}

    def has_delete_permission(self, request, obj=None):
        return False


class PocketInline(admin.TabularInline):
    model = Pocket
    fields = ("credit_type", "funding_org", "expires_on", "current_balance", "is_external", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="Balance")
    def current_balance(self, pocket: Pocket) -> int:
        return pocket_balance(pocket)


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "kind", "org", "user", "created_at"]
    list_filter = ["kind"]
    search_fields = ["org__name", "user__email", "name"]
    list_select_related = ["org", "user"]
    inlines = [PocketInline]


@admin.register(Pocket)
class PocketAdmin(ReadOnlyAdmin):
    list_display = ["wallet", "credit_type", "funding_org", "expires_on", "current_balance"]
    list_filter = ["credit_type", "is_external"]
    search_fields = ["wallet__org__name", "wallet__user__email"]
    list_select_related = ["wallet__org", "wallet__user", "credit_type", "funding_org"]

    @admin.display(description="Balance")
    def current_balance(self, pocket: Pocket) -> int:
        return pocket_balance(pocket)


class EntryInline(admin.TabularInline):
    model = Entry
    fields = ("wallet", "credit_type", "pocket", "amount", "balance_after")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "kind", "org", "amount", "actor", "memo"]
    list_filter = ["kind"]
    search_fields = ["memo", "org__name", "actor__email", "idempotency_key"]
    list_select_related = ["org", "actor"]
    date_hierarchy = "created_at"
    inlines = [EntryInline]


class PromoGrantForm(forms.Form):
    # The app's strict credits field: forms.IntegerField took Arabic-Indic and full-width digits, '+5', '1_000'
    # and '1.0' (int() does), and refused '1,000'.
    amount = CreditsField(label="Promo credits per org", max_value=10**12)
    memo = forms.CharField(label="Reason", max_length=200, required=False)
    expires_on = forms.DateField(
        label="Expires on",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Optional: the day these Promo credits expire (after today). Leave blank: they never expire.",
        error_messages={"invalid": "Enter the expiry as a date, like 2027-06-30."},
    )

    def clean_expires_on(self):
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        try:  # the ledger's own rule (wallets.services.check_expiry_day), shown next to the field
            return check_expiry_day(day)
        except InvalidExpiry as exc:
            raise forms.ValidationError(exc.message) from exc


@admin.action(description="Grant Promo credits to the selected orgs' wallets")
def grant_promo_credits(modeladmin, request, queryset):
    """Two steps: a form for the amount, then one ledger transfer per org through the primitive."""
    if "apply" in request.POST:
        form = PromoGrantForm(request.POST)
        if form.is_valid():
            granted = 0
            for org in queryset:
                try:
                    org_grant_promo(
                        org=org,
                        amount=form.cleaned_data["amount"],
                        actor=request.user,
                        memo=form.cleaned_data["memo"] or "Promo grant",
                        idempotency_key=f"promo:{request.POST.get('grant_key', '')}:{org.pk}",
                        expires_on=form.cleaned_data["expires_on"],
                    )
                    granted += 1
                except WalletError as exc:
                    modeladmin.message_user(request, f"{org}: {exc.message}", messages.ERROR)
            day = form.cleaned_data["expires_on"]
            expiring = f", expiring on {day:%b} {day.day}, {day.year}" if day else ""
            modeladmin.message_user(
                request,
                f"Granted {form.cleaned_data['amount']:,} Promo credits to {granted} org(s){expiring}.",
                messages.SUCCESS,
            )
            return None
    else:
        form = PromoGrantForm()
    return render(
        request,
        "admin/grant_promo.html",
        {
            "form": form,
            "orgs": queryset,
            "grant_key": request.POST.get("grant_key") or uuid.uuid4().hex,
            "action": "grant_promo_credits",
            "title": "Grant Promo credits",
            "opts": Organization._meta,
        },
    )


@admin.register(OutstandingBalance)
class OutstandingBalanceAdmin(ReadOnlyAdmin):
    list_display = ["org", "credits", "updated_at"]
    list_select_related = ["org"]
