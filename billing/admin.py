from billing.api_admin import ApiKeyAdmin, IdempotencyRecordAdmin, UsageChargeAdmin  # noqa: F401
