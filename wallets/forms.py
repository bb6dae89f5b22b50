"""The one form field for credit amounts, shared by every form that takes credits."""

import re

from django import forms

from wallets.models import MAX_AMOUNT

# ASCII digits only: `\d` would also take Arabic-Indic or full-width digits.
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
# Thousands groups separated by commas or (no-break) spaces: "1,000", "1 000". Nothing else in between.
_GROUPED = re.compile(r"[0-9]{1,3}([, \u00a0][0-9]{3})+")


class CreditsField(forms.CharField):
    """A whole number of credits between min_value and max_value. Accepts "1000", "1,000" and "1 000" (and
    surrounding spaces); refuses signs, decimals, exponents, underscores, stray spaces, non-ASCII digits
    and NUL."""

    default_error_messages = {
        "required": "Enter an amount.",
        "fraction": "Credits are whole numbers: enter an amount like 100.",
        "positive": "Enter an amount greater than zero.",
        "too_small": "Enter at least %(min)s.",
        "too_large": "That amount is too large (at most %(max)s credits).",
        "invalid": "Enter a whole number of credits, like 100.",
    }

    def __init__(self, *, min_value: int = 1, max_value: int = MAX_AMOUNT, placeholder: str = "e.g. 100", **kwargs):
        self.min_value, self.max_value = min_value, max_value
        kwargs.setdefault(
            "widget",
            forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "placeholder": placeholder}),
        )
        super().__init__(**kwargs)

    def _error(self, code: str) -> forms.ValidationError:
        params = {"min": f"{self.min_value:,}", "max": f"{self.max_value:,}"}
        return forms.ValidationError(self.error_messages[code], code=code, params=params)

    def _too_small(self) -> forms.ValidationError:
        return self._error("positive" if self.min_value == 1 else "too_small")

    def to_python(self, value):
        text = super().to_python(value)
        if text is None or text in self.empty_values:
            return None
        if _GROUPED.fullmatch(text):
            text = re.sub(r"[, \u00a0]", "", text)
        if text.startswith("-") and _DIGITS.fullmatch(text[1:].replace(",", "").replace(".", "") or "x"):
            raise self._too_small()
        if re.fullmatch(r"[0-9][0-9,]*\.[0-9]*", text, re.ASCII):
            raise self._error("fraction" if set(text.split(".", 1)[1]) - {"0"} else "invalid")
        if not _DIGITS.fullmatch(text):
            raise self._error("invalid")
        digits = text.lstrip("0") or "0"
        if len(digits) > len(str(self.max_value)):
            raise self._error("too_large")
        amount = int(digits)
        if amount < self.min_value:
            raise self._too_small()
        if amount > self.max_value:
            raise self._error("too_large")
        return amount
