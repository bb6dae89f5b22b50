"""The one base for errors a person may read: every domain refusal carries a user-safe `message`.

Views show it next to the form that caused it; the JSON API turns it into problem details. Nothing
moved when one is raised.
"""


class DomainError(Exception):
    message = "That could not be done."

    def __init__(self, message: str | None = None):
        if message is not None:
            self.message = message
        super().__init__(self.message)
