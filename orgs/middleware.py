"""Resolves the current workspace (Personal, or one org) from the session once per request."""

from orgs.models import Membership, MembershipStatus

SESSION_KEY = "workspace_org_id"


class WorkspaceMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.workspace = _Workspace(request)
        user = getattr(request, "user", None)
        if user is not None:
            # Permission selectors reuse the memberships the sidebar loads anyway (one query, not two).
            user._credits_workspace = request.workspace
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        # An org's page shows that org as the current workspace (if the user is an active member of it).
        request.workspace.slug_hint = view_kwargs.get("org_slug")


class _Workspace:
    """Lazy: pages that never ask pay no query."""

    def __init__(self, request):
        self._request = request
        self._loaded = False
        self._membership = None
        self._memberships = None
        self.slug_hint = None

    def _load(self):
        if self._loaded:
            return
        self._loaded = True
        user = self._request.user
        if not user.is_authenticated:
            self._memberships = []
            return
        self._memberships = list(
            Membership.objects.select_related("org")
            .filter(user=user, status=MembershipStatus.ACTIVE)
            .order_by("org__name")
        )
        # On an org's page, that org is the workspace shown (for this request; the switcher sets the session).
        hinted = next((m for m in self._memberships if self.slug_hint and m.org.slug == self.slug_hint), None)
        org_id = self._request.session.get(SESSION_KEY)
        self._membership = hinted or next((m for m in self._memberships if m.org_id == org_id), None)

    @property
    def membership(self) -> Membership | None:
        self._load()
        return self._membership

    @property
    def org(self):
        m = self.membership
        return m.org if m else None

    @property
    def memberships(self) -> list[Membership]:
        self._load()
        return self._memberships

    def active_membership_for(self, org_slug: str) -> Membership | None:
        self._load()
        return next((m for m in self._memberships if m.org.slug == org_slug), None)

    @property
    def name(self) -> str:
        return self.org.name if self.org else "Personal"
