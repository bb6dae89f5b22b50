from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from orgs.models import Invitation, MemberDefaults, Membership, MembershipStatus, Organization, User
from wallets.admin import grant_promo_credits


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


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ["user", "role", "status", "has_seat", "joined_at"]
    readonly_fields = ["has_seat"]
    raw_id_fields = ["user"]
    extra = 0


class MemberDefaultsInline(admin.StackedInline):
    model = MemberDefaults
    exclude = ["updated_by", "updated_at"]
    can_delete = False


class OrganizationAdminForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = "__all__"  # noqa: DJ007 - staff edit every field

    def clean_seats(self):
        seats = self.cleaned_data["seats"]
        if self.instance.pk:
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


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "org", "role", "status", "joined_at"]
    list_filter = ["role", "status"]
    search_fields = ["user__email", "org__name"]
    raw_id_fields = ["user", "org"]
    list_select_related = ["user", "org"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "org", "role", "credit_allocation", "status", "created_at", "expires_at"]
    list_filter = ["status", "role"]
    search_fields = ["email", "org__name"]
    raw_id_fields = ["org", "invited_by", "accepted_by"]
    readonly_fields = ["nonce", "status", "accepted_by", "accepted_at", "cancelled_at"]
