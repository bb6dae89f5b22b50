"""State only: these models moved to their feature apps; the tables stay as they are. Their content types
follow them, so admin history and permissions keep pointing at the same rows."""

from django.db import migrations


MOVED = {
    "creditrequest": "credit_requests",
    "apikey": "apikeys",
    "idempotencyrecord": "apikeys",
    "usagecharge": "apikeys",
    "outstandingbalance": "wallets",
}


def _move_content_types(apps, schema_editor, source="billing", moved=MOVED):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model, app_label in moved.items():
        if not ContentType.objects.filter(app_label=app_label, model=model).exists():
            ContentType.objects.filter(app_label=source, model=model).update(app_label=app_label)


def _unmove_content_types(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model, app_label in MOVED.items():
        if not ContentType.objects.filter(app_label="billing", model=model).exists():
            ContentType.objects.filter(app_label=app_label, model=model).update(app_label="billing")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("wallets", "0006_outstandingbalance"),
        ("apikeys", "0001_initial"),
        ("credit_requests", "0001_initial"),
        ("billing", "0004_purchases_stripe"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(
                    model_name="apikey",
                    name="billing_apikey_org_recent",
                ),
                migrations.RemoveConstraint(
                    model_name="apikey",
                    name="billing_apikey_one_per_form",
                ),
                migrations.RemoveIndex(
                    model_name="creditrequest",
                    name="billing_creq_pending_oldest",
                ),
                migrations.RemoveIndex(
                    model_name="creditrequest",
                    name="billing_creq_decided",
                ),
                migrations.RemoveIndex(
                    model_name="creditrequest",
                    name="billing_creq_by_member",
                ),
                migrations.RemoveConstraint(
                    model_name="creditrequest",
                    name="billing_creditrequest_amount_positive",
                ),
                migrations.RemoveConstraint(
                    model_name="creditrequest",
                    name="billing_creditrequest_granted_within_asked",
                ),
                migrations.RemoveConstraint(
                    model_name="creditrequest",
                    name="billing_creditrequest_approved_has_transfer",
                ),
                migrations.RemoveConstraint(
                    model_name="creditrequest",
                    name="billing_creditrequest_decided_at",
                ),
                migrations.RemoveConstraint(
                    model_name="creditrequest",
                    name="billing_creditrequest_client_key",
                ),
                migrations.RemoveConstraint(
                    model_name="idempotencyrecord",
                    name="billing_idempotency_one_per_org",
                ),
                migrations.RemoveConstraint(
                    model_name="outstandingbalance",
                    name="billing_outstanding_not_negative",
                ),
                migrations.RemoveIndex(
                    model_name="usagecharge",
                    name="billing_usage_member_recent",
                ),
                migrations.RemoveConstraint(
                    model_name="usagecharge",
                    name="billing_usagecharge_amount_positive",
                ),
                migrations.RemoveField(
                    model_name="apikey",
                    name="created_by",
                ),
                migrations.RemoveField(
                    model_name="apikey",
                    name="org",
                ),
                migrations.RemoveField(
                    model_name="apikey",
                    name="revoked_by",
                ),
                migrations.RemoveField(
                    model_name="idempotencyrecord",
                    name="api_key",
                ),
                migrations.RemoveField(
                    model_name="idempotencyrecord",
                    name="org",
                ),
                migrations.RemoveField(
                    model_name="outstandingbalance",
                    name="org",
                ),
                migrations.RemoveField(
                    model_name="usagecharge",
                    name="api_key",
                ),
                migrations.RemoveField(
                    model_name="usagecharge",
                    name="membership",
                ),
                migrations.RemoveField(
                    model_name="usagecharge",
                    name="org",
                ),
                migrations.RemoveField(
                    model_name="usagecharge",
                    name="transfer",
                ),
                migrations.DeleteModel(
                    name="CreditRequest",
                ),
                migrations.DeleteModel(
                    name="IdempotencyRecord",
                ),
                migrations.DeleteModel(
                    name="OutstandingBalance",
                ),
                migrations.DeleteModel(
                    name="ApiKey",
                ),
                migrations.DeleteModel(
                    name="UsageCharge",
                ),
            ],
        ),
        migrations.RunPython(_move_content_types, _unmove_content_types),
    ]
