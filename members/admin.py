from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db import transaction
from django.utils import timezone

from core.errors import DomainError
from members.forms import ROLE_CHOICES, MemberDefaultsForm
from members.services import member_remove, membership_change_role
from orgs.models import Invitation, MemberDefaults, Membership, MembershipStatus, Organization, Role, User
from wallets.admin import grant_promo_credits
from wallets.forms import CreditsField

SEATS_MAX = 1_000_000


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


# ---------------------------------------------------------------- memberships
#
# A membership's status, user, org and seat belong to the services in members.services: removing a member returns, in
# the same transaction, every credit the org gave them (one Return transfer); assigning a seat moves seat credits.
# Setting status=removed by hand skipped the Return, so the member kept the org's credits. Here staff may only
# change the role of a non-owner (through membership_change_role, which locks the row) and remove members with the
# "Remove selected members" action (through member_remove). Adding and deleting rows is not offered: people join
# through invitations (which pay the default allocation and the seat), and a deleted row would also skip the Return.

MEMBERSHIP_READ_ONLY = [
    "user",
    "org",
    "status",
    "joined_at",
    "removed_at",
    "has_seat",
    "seat_assigned_at",
    "seat_assignments",
    "removals",
    "notice",
]


class MembershipRoleForm(forms.ModelForm):
    """The role, and only for a current non-owner: the owner's role and removed memberships are shown, not edited."""

    role = forms.ChoiceField(label="Role", choices=ROLE_CHOICES)

    class Meta:
        model = Membership
        fields = ["role"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        membership = self.instance
        if membership.pk and (membership.role == Role.OWNER or membership.status == MembershipStatus.REMOVED):
            self.fields["role"] = forms.ChoiceField(
                label="Role",
                choices=Role.choices,
                disabled=True,
                required=False,
                help_text="The owner's role does not change."
                if membership.role == Role.OWNER
                else "Removed: the role does not change.",
            )


def _change_roles(modeladmin, request, changed_forms) -> list:
    """Each changed role through the service; returns (membership, ["role"]) for the admin's change message."""
    changed = []
    for form in changed_forms:
        membership = form.instance
        if membership.pk is None or "role" not in form.changed_data:
            continue
        try:
            membership = membership_change_role(
                org=membership.org, membership_id=membership.pk, role=form.cleaned_data["role"], actor=request.user
            )
        except DomainError as exc:
            modeladmin.message_user(request, f"{membership.user}: {exc.message}", messages.ERROR)
        else:
            changed.append((membership, ["role"]))
    return changed


class MembershipInline(admin.TabularInline):
    model = Membership
    form = MembershipRoleForm
    fields = ["user", "role", "status", "has_seat", "joined_at"]
    readonly_fields = ["user", "status", "has_seat", "joined_at"]
    extra = 0
    can_delete = False
    show_change_link = True  # the membership's page, and from its list the Remove action

    def has_add_permission(self, request, obj=None):
        return False


# ---------------------------------------------------------------- numbers staff type in


class SeatsField(CreditsField):
    """The strict whole-number field (ASCII digits, optional thousands commas), worded for seats."""

    default_error_messages = {
        "required": "Enter a number of seats.",
        "fraction": "Seats are whole numbers: enter a number like 10.",
        "too_small": "Enter at least %(min)s.",
        "too_large": "That is too many seats (at most %(max)s).",
        "invalid": "Enter a whole number of seats, like 10.",
    }


class MemberDefaultsInline(admin.StackedInline):
    model = MemberDefaults
    # The Settings > Member defaults page's own form: strict numbers, same ranges (int() took '١٢٣', '+5', '1_000').
    form = MemberDefaultsForm
    exclude = ["updated_by", "updated_at"]
    can_delete = False


class OrganizationAdminForm(forms.ModelForm):
    seats = SeatsField(
        label="Seats",
        min_value=0,
        max_value=SEATS_MAX,
        help_text=f"How many seats the org has (0 to {SEATS_MAX:,}).",
    )

    class Meta:
        model = Organization
        fields = "__all__"  # noqa: DJ007 - staff edit every field

    def clean_seats(self):
        seats = self.cleaned_data["seats"]
        if self.instance.pk:
            with transaction.atomic():
                # Seats are counted under the org row (the services' lock order), so a seat assigned meanwhile
                # waits for this save or is counted here. The admin's own transaction keeps the lock until commit.
                Organization.objects.select_for_update().filter(pk=self.instance.pk).exists()
                used = (
                    Membership.objects.filter(org=self.instance, has_seat=True)
                    .exclude(status=MembershipStatus.REMOVED)
                    .count()
                )
            if seats < used:
                raise forms.ValidationError(
                    f"Seats assigned now: {used}. Revoke some before lowering seats below that."
                )
        return seats


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    form = OrganizationAdminForm
    list_display = ["name", "slug", "seats", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MemberDefaultsInline, MembershipInline]
    actions = [grant_promo_credits]

    def save_formset(self, request, form, formset, change):
        if formset.model is Membership:
            formset.changed_objects = _change_roles(self, request, formset.forms)
            formset.new_objects, formset.deleted_objects = [], []
            return
        if formset.model is MemberDefaults:
            for defaults in formset.save(commit=False):
                defaults.updated_by = request.user
                defaults.updated_at = timezone.now()
                defaults.save()
            return
        super().save_formset(request, form, formset, change)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    form = MembershipRoleForm
    list_display = ["user", "org", "role", "status", "has_seat", "joined_at"]
    list_filter = ["role", "status"]
    search_fields = ["user__email", "org__name"]
    list_select_related = ["user", "org"]
    fields = ["user", "org", "role", *MEMBERSHIP_READ_ONLY[2:]]
    readonly_fields = MEMBERSHIP_READ_ONLY
    actions = ["remove_members"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        _change_roles(self, request, [form])

    @admin.action(description="Remove selected members (their credits from the org return to the org wallet)")
    def remove_members(self, request, queryset):
        """The Members page's Remove: member_remove marks the membership removed and returns the org's credits
        in the same transaction (one Return transfer); the owner is refused."""
        for membership in queryset.select_related("org", "user").order_by("org_id", "pk"):
            who = f"{membership.user.email} ({membership.org.name})"
            try:
                removal = member_remove(org=membership.org, membership_id=membership.pk, actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"{who}: {exc.message}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{who} was removed. {removal.returned:,} credits returned to the org wallet.",
                    messages.SUCCESS,
                )


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations are made on the Members page (which emails the signed link). The credit allocation is what the
    invite promised, and org and address are who it promised it to: shown, never edited (cancel and re-invite)."""

    list_display = ["email", "org", "role", "credit_allocation", "status", "created_at", "expires_at"]
    list_filter = ["status", "role"]
    search_fields = ["email", "org__name"]
    list_select_related = ["org"]
    readonly_fields = [
        "org",
        "email",
        "credit_allocation",
        "invited_by",
        "created_at",
        "nonce",
        "status",
        "accepted_by",
        "accepted_at",
        "cancelled_at",
    ]

    def has_add_permission(self, request, obj=None):
        return False
