"""Keys live as long as their creator's membership: the reason a key was revoked, and the keys of people
already removed from their org revoked now (removing someone revokes their keys from here on)."""

from django.db import migrations, models
from django.utils import timezone


def revoke_keys_of_removed_creators(apps, schema_editor):
    ApiKey = apps.get_model("apikeys", "ApiKey")
    Membership = apps.get_model("orgs", "Membership")
    removed = Membership.objects.filter(
        org_id=models.OuterRef("org_id"), user_id=models.OuterRef("created_by_id"), status="removed"
    )
    ApiKey.objects.filter(revoked_at__isnull=True, created_by__isnull=False).filter(models.Exists(removed)).update(
        revoked_at=timezone.now(), revoked_reason="creator_removed"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("apikeys", "0001_initial"),
        ("orgs", "0002_members_invitations_seats"),
    ]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="revoked_reason",
            field=models.CharField(
                blank=True,
                choices=[("", "Revoked by an admin"), ("creator_removed", "Its creator was removed from the org")],
                default="",
                max_length=32,
            ),
        ),
        migrations.RunPython(revoke_keys_of_removed_creators, migrations.RunPython.noop),
    ]
