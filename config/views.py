from django.shortcuts import render


def csrf_failure(request, reason=""):
    """A missing or stale CSRF token: a readable 403 that says nothing was changed."""
    return render(request, "403_csrf.html", status=403)


def healthz(request):
    """Liveness + database check for load balancers: 200 'ok' or 503."""
    from django.db import connection
    from django.http import HttpResponse

    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
    except Exception:  # any database failure means unhealthy
        return HttpResponse("database unavailable", status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")
