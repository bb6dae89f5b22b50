from django.shortcuts import render


def csrf_failure(request, reason=""):
    """A missing or stale CSRF token: a readable 403 that says nothing was changed."""
    return render(request, "403_csrf.html", status=403)
