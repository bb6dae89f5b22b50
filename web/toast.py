"""Toasts: the result of a money action made with htmx, shown where the eye is (a fixed live region in
base.html, filled by static/js/app.js). A full page load says the same with Django's messages framework."""

import json

from django.http import HttpResponse


def add_toast(response: HttpResponse, message: str, level: str = "success") -> HttpResponse:
    """Adds a toast to an htmx response (merged with any HX-Trigger the response already carries)."""
    triggers: dict = {}
    existing = response.headers.get("HX-Trigger")
    if existing:
        try:
            parsed = json.loads(existing)
        except ValueError:
            parsed = None
        triggers = parsed if isinstance(parsed, dict) else {name.strip(): None for name in existing.split(",")}
    triggers["toast"] = {"message": message, "level": level}
    response.headers["HX-Trigger"] = json.dumps(triggers)
    return response
