from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orgs", "0002_members_invitations_seats"),
    ]

    operations = [
        migrations.AddField(
            model_name="membership",
            name="last_used_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When the user last chose this org in the switcher (sign-in lands there).",
                null=True,
            ),
        ),
    ]
