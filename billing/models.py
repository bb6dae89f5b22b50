from billing.api_models import ApiKey, ApiKeyScope, IdempotencyRecord, UsageCharge

__all__ = ["ApiKey", "ApiKeyScope", "IdempotencyRecord", "UsageCharge"]
