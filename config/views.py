from django.db import connection
from django.http import HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET

# Models that moved out of the `billing` app: their admin pages moved with their app label.
MOVED_ADMIN = {
    "creditrequest": "credit_requests",
    "apikey": "apikeys",
    "idempotencyrecord": "apikeys",
    "usagecharge": "apikeys",
    "outstandingbalance": "wallets",
}


def csrf_failure(request, reason=""):
    """A missing or stale CSRF token: a readable 403 that says nothing was changed."""
    return render(request, "403_csrf.html", status=403)


def healthz(request):
    """Liveness + database check for load balancers: 200 'ok' or 503."""
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
    except Exception:  # any database failure means unhealthy
        return HttpResponse("database unavailable", status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")


@require_GET
def moved_admin(request, model: str, rest: str = ""):
    """Bookmarks of /admin/billing/<model>/… keep working: a permanent redirect to the model's new app."""
    query = f"?{request.META['QUERY_STRING']}" if request.META.get("QUERY_STRING") else ""
    return HttpResponsePermanentRedirect(f"/admin/{MOVED_ADMIN[model]}/{model}/{rest}{query}")
