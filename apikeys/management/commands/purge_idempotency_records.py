"""Delete stored API responses older than API_IDEMPOTENCY_RETENTION_HOURS (never less than 24 h)."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from apikeys.models import IdempotencyRecord


class Command(BaseCommand):
    help = "Delete Idempotency-Key records past their retention (at least 24 hours are always kept)."

    def handle(self, *args, **options):
        hours = max(24, settings.API_IDEMPOTENCY_RETENTION_HOURS)
        cutoff = timezone.now() - timedelta(hours=hours)
        deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
        self.stdout.write(f"Deleted {deleted} idempotency records older than {hours} h.")
