"""The stand-in's own state: Stripe objects as JSON, keyed by their Stripe-style ids."""

from django.db import models
from django.utils import timezone


class StandinObject(models.Model):
    id = models.CharField(max_length=64, primary_key=True)
    type = models.CharField(max_length=40, db_index=True)
    data = models.JSONField()
    idempotency_key = models.CharField(max_length=255, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.id
