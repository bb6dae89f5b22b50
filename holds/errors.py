"""Refusals of the hold verbs (each a DomainError: a user-safe message; nothing moved). The API gives each its
status and code (api/routers/holds.py)."""

from core.errors import DomainError


class HoldError(DomainError):
    """Base of the hold refusals."""


class HoldNotFound(HoldError):
    message = "No such hold in this organization."


class HoldNotOpen(HoldError):
    """The hold is already captured or voided."""


class HoldExpired(HoldError):
    message = "This hold has expired: its credits are released and it can no longer be captured."


class CaptureTooLarge(HoldError):
    """A capture above the held amount."""


class HoldKeyReused(HoldError):
    message = "This idempotency key was already used for a different hold."
