"""Validators every layer's forms and API schemas share. Imports nothing from the project.

No control characters in names, memos and descriptions: a line break in a name reached the admins'
notification email's subject (an email header), so the email could not be sent; tabs, escapes, NUL and
invisible direction overrides make a name or memo look like something it is not on a page or in a CSV.
So free text people type is refused, with a field error, when it holds one: Unicode category Cc (C0,
DEL, C1), the line and paragraph separators (U+2028, U+2029) and the bidirectional embedding, override
and isolate controls. Multi-line fields (a credit request's reason) may keep their line breaks.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKS = frozenset("\r\n")

# The same set as a regular expression (JSON Schema / ECMA-262 and Python syntax), for the API's published schema.
PLAIN_TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]*$"

SINGLE_LINE_MESSAGE = "Use plain text on one line: line breaks, tabs and other control characters are not allowed."
MULTI_LINE_MESSAGE = "Use plain text: tabs and other control characters are not allowed (line breaks are fine)."


def first_control_character(value: str, *, allow_line_breaks: bool = False) -> str | None:
    """The first control character in value, or None."""
    for char in value:
        if char.isprintable():
            continue  # the common case: printable characters are none of these
        if allow_line_breaks and char in _LINE_BREAKS:
            continue
        if char in _BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            return char
    return None


@deconstructible
class NoControlCharactersValidator:
    """Django validator: a field error (code `control_characters`) when the text holds a control character."""

    code = "control_characters"

    def __init__(self, *, allow_line_breaks: bool = False, message: str | None = None):
        self.allow_line_breaks = allow_line_breaks
        self.message = message or (MULTI_LINE_MESSAGE if allow_line_breaks else SINGLE_LINE_MESSAGE)

    def __call__(self, value: object) -> None:
        if isinstance(value, str) and first_control_character(value, allow_line_breaks=self.allow_line_breaks):
            raise ValidationError(self.message, code=self.code)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, NoControlCharactersValidator)
            and self.allow_line_breaks == other.allow_line_breaks
            and self.message == other.message
        )

    def __hash__(self) -> int:
        return hash((self.allow_line_breaks, self.message))


no_control_characters = NoControlCharactersValidator()
no_control_characters_multiline = NoControlCharactersValidator(allow_line_breaks=True)


def check_no_control_characters(value: str) -> str:
    """For pydantic (the JSON API): the value, or ValueError with a message the 422 response carries."""
    if first_control_character(value):
        raise ValueError("must be plain text on one line: line breaks, tabs and other control characters are refused")
    return value
