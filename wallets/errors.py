"""Ledger errors: the credits did not move. Each carries a user-safe `message` (core.errors.DomainError)."""

from core.errors import DomainError


class WalletError(DomainError):
    message = "The credits could not be moved."


class InvalidAmount(WalletError):
    def __init__(self, amount=None, message: str | None = None):
        self.amount = amount
        super().__init__(message or "Enter a whole number of credits greater than zero.")


class InsufficientCredits(WalletError):
    def __init__(self, *, available: int, requested: int, credit_type_name: str = ""):
        self.available = available
        self.requested = requested
        self.shortfall = requested - available
        kind = f" {credit_type_name}" if credit_type_name else ""
        super().__init__(
            f"Not enough{kind} credits: {requested:,} needed, {available:,} available ({self.shortfall:,} missing)."
        )


class IdempotencyConflict(WalletError):
    def __init__(self):
        super().__init__("This form was already submitted with different details. Reload the page and try again.")


class MemberNotActive(WalletError):
    def __init__(self, message: str | None = None):
        super().__init__(message or "That person is not (or no longer) a member of this organization.")


class LedgerBusy(WalletError):
    def __init__(self):
        super().__init__("The wallet is busy right now. Nothing was moved; please try again.")


class InvalidExpiry(WalletError):
    def __init__(self, message: str | None = None):
        super().__init__(message or "Enter an expiry date after today.")
