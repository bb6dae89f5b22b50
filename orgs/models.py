"""People and organizations: users (keyed by email), orgs, and memberships with a role."""

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> "User":
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        with transaction.atomic(using=self._db):
            user.save(using=self._db)  # the wallets app adds the Default wallet here (wallets/models.py)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> "User":
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)

    def get_by_natural_key(self, username):
        return self.get(**{f"{self.model.USERNAME_FIELD}__iexact": username})


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField("email address", unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    @property
    def display_name(self) -> str:
        return self.name or self.email

    def get_full_name(self) -> str:
        return self.display_name

    def get_short_name(self) -> str:
        return self.name or self.email.split("@")[0]


class Organization(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    seats = models.PositiveIntegerField(default=0, help_text="How many seats the org has (set by staff).")
    # Purchased credits (Buy credits, auto top-up) expire this many months after the purchase; null: never
    # (issue 19, docs/expiry.md). A purchase keeps the day it was given when the setting changes later.
    purchased_credits_expire_months = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Purchased credits expire this many months after the purchase. Empty: they never expire.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("billing:page", args=[self.slug])

    @staticmethod
    def unique_slug(name: str) -> str:
        base = slugify(name)[:120] or "org"
        slug, n = base, 1
        while Organization.objects.filter(slug=slug).exists():
            n += 1
            slug = f"{base}-{n}"
        return slug


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MANAGER = "manager", "Manager"
    MEMBER = "member", "Member"


class MembershipStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    REMOVED = "removed", "Removed"


class Membership(models.Model):
    """A user's place in an org. Removed memberships are kept (status REMOVED) so history stays whole."""

    org = models.ForeignKey(Organization, models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    status = models.CharField(max_length=16, choices=MembershipStatus.choices, default=MembershipStatus.ACTIVE)
    joined_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)
    has_seat = models.BooleanField(default=False)
    seat_assigned_at = models.DateTimeField(null=True, blank=True)
    seat_assignments = models.PositiveIntegerField(default=0, help_text="Seats ever assigned (keys seat credits).")
    removals = models.PositiveIntegerField(default=0, help_text="Times removed (keys Returns).")
    notice = models.CharField(max_length=300, blank=True, help_text="Something admins should look at.")
    last_used_at = models.DateTimeField(
        null=True, blank=True, help_text="When the user last chose this org in the switcher (sign-in lands there)."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "user"], name="orgs_membership_one_per_user"),
            models.UniqueConstraint(
                fields=["org"], condition=Q(role="owner") & ~Q(status="removed"), name="orgs_membership_one_owner"
            ),
        ]
        indexes = [
            models.Index(fields=["org", "status", "role"], name="orgs_membership_org_status"),
            models.Index(fields=["org"], condition=Q(has_seat=True), name="orgs_membership_seated"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.org} ({self.get_role_display()})"

    @property
    def is_active(self) -> bool:
        return self.status == MembershipStatus.ACTIVE

    @property
    def can_manage_billing(self) -> bool:
        """Owner and admins act on Billing: buy, transfer, decide requests."""
        return self.is_active and self.role in (Role.OWNER, Role.ADMIN)

    @property
    def can_view_billing(self) -> bool:
        """Managers may look at Billing, read-only."""
        return self.is_active and self.role in (Role.OWNER, Role.ADMIN, Role.MANAGER)


SEAT_CREDITS_MAX = 100_000
DEFAULT_ALLOCATION_MAX = 1_000_000
INVITE_ALLOCATION_MAX = 1_000_000


class MemberDefaults(models.Model):
    """Settings > Member defaults: what happens to people who join after the change."""

    org = models.OneToOneField(Organization, models.CASCADE, primary_key=True, related_name="member_defaults")
    auto_assign_default_role = models.BooleanField(
        "Auto-assign default role",
        default=True,
        help_text="Invitations start with the default role, and a CSV row without a role gets it.",
    )
    default_role = models.CharField(
        max_length=16,
        choices=[(Role.MEMBER, "Member"), (Role.MANAGER, "Manager"), (Role.ADMIN, "Admin")],
        default=Role.MEMBER,
    )
    auto_assign_seats = models.BooleanField(
        "Auto-assign seats", default=False, help_text="Give each new member a free seat when they join."
    )
    seat_assignment_credits = models.BigIntegerField(
        "Seat assignment credits",
        default=0,
        help_text=f"Credits moved from the org wallet when a seat is assigned (0 to {SEAT_CREDITS_MAX:,}).",
    )
    default_credit_allocation = models.BigIntegerField(
        "Default credit allocation",
        default=0,
        help_text=f"Credits each new member gets from the org wallet on joining (0 to {DEFAULT_ALLOCATION_MAX:,}).",
    )
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(User, models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name_plural = "member defaults"
        constraints = [
            models.CheckConstraint(
                condition=Q(seat_assignment_credits__gte=0, seat_assignment_credits__lte=SEAT_CREDITS_MAX),
                name="orgs_memberdefaults_seat_credits_range",
            ),
            models.CheckConstraint(
                condition=Q(default_credit_allocation__gte=0, default_credit_allocation__lte=DEFAULT_ALLOCATION_MAX),
                name="orgs_memberdefaults_allocation_range",
            ),
            models.CheckConstraint(
                condition=Q(default_role__in=[Role.MEMBER, Role.MANAGER, Role.ADMIN]),
                name="orgs_memberdefaults_role_not_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"Member defaults for {self.org}"

    @classmethod
    def for_org(cls, org: Organization) -> "MemberDefaults":
        """The saved defaults, or the built-in ones (unsaved) for an org that never changed them."""
        return cls.objects.filter(org=org).first() or cls(org=org)


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"


class Invitation(models.Model):
    """An emailed, signed, expiring link that lets one person join an org with a role (and credits).

    Credits move only when it is accepted; the accept locks this row, so it is used at most once.
    """

    org = models.ForeignKey(Organization, models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(
        max_length=16, choices=[(Role.MEMBER, "Member"), (Role.MANAGER, "Manager"), (Role.ADMIN, "Admin")]
    )
    credit_allocation = models.BigIntegerField(default=0)
    nonce = models.CharField(max_length=32, editable=False)
    status = models.CharField(max_length=16, choices=InvitationStatus.choices, default=InvitationStatus.PENDING)
    invited_by = models.ForeignKey(User, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_by = models.ForeignKey(User, models.SET_NULL, null=True, blank=True, related_name="+")
    accepted_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "email"], condition=Q(status="pending"), name="orgs_invitation_one_pending_per_email"
            ),
            models.CheckConstraint(
                condition=Q(credit_allocation__gte=0, credit_allocation__lte=INVITE_ALLOCATION_MAX),
                name="orgs_invitation_allocation_range",
            ),
            models.CheckConstraint(condition=~Q(role="owner"), name="orgs_invitation_role_not_owner"),
        ]
        indexes = [models.Index(fields=["org", "status", "email"], name="orgs_invitation_org_status")]

    def __str__(self) -> str:
        return f"Invitation for {self.email} to {self.org} ({self.status})"

    @property
    def is_expired(self) -> bool:
        return self.status == InvitationStatus.EXPIRED or (
            self.status == InvitationStatus.PENDING and self.expires_at <= timezone.now()
        )

    @property
    def display_status(self) -> str:
        return "Expired" if self.is_expired else self.get_status_display()
