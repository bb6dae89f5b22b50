"""Joining through an invitation link the way an invitee does: a new address proves it by email first."""

import re

from django.urls import reverse

from members import services as svc

PASSWORD = "a-long-enough-passphrase"


def invite_path(invitation) -> str:
    return reverse("invite_accept", args=[svc.invitation_token(invitation)])


def confirm_link(message) -> str:
    """The link the invitation page emails to an address with no account (path and query)."""
    match = re.search(r"https?://[^/\s]+(/invite/[^\s]+\?confirm=[^\s]+)", message.body)
    assert match, message.body
    return match.group(1)


def ask_for_link(client, path, capture, mailoutbox, name=""):
    """Step 1 on the invitation page: "Email me a link to join"; returns the emailed link."""
    sent = len(mailoutbox)
    with capture(execute=True):
        response = client.post(path, {"name": name})
    assert response.status_code == 200, response.content.decode()[:2000]
    assert "Check your inbox" in response.content.decode()
    assert len(mailoutbox) == sent + 1
    return confirm_link(mailoutbox[-1])


def join_by_email(client, path, capture, mailoutbox, name="", password=PASSWORD):
    """Both steps: ask for the link, then choose a password behind it (creates the account and joins)."""
    link = ask_for_link(client, path, capture, mailoutbox, name=name)
    return client.post(link, {"name": name, "password": password})
