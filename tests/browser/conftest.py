import pytest
from django.core.management import call_command


@pytest.fixture
def demo(transactional_db):
    """The demo org from `seed_demo`, in the live server's database."""
    from wallets.models import ensure_reference_data

    ensure_reference_data()
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115


def sign_in(page, live_server, email, password="demo"):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    # Where sign-in lands depends on the user's orgs (one org: that org; several: the last one used).
    page.wait_for_url(lambda url: "/accounts/login" not in url)


def switcher(page):
    """The workspace switcher's summary: a <details> disclosure ("Switch workspace. Current: <name>")."""
    return page.locator("details.switcher > summary")


def switch_workspace(page, name):
    """The switcher is a <details> disclosure: its summary shows a list of workspace buttons (one POST form)."""
    if not page.locator("details.switcher[open]").count():
        switcher(page).click()
    page.get_by_role("list", name="Workspaces").get_by_role("button", name=name).click()
    page.wait_for_load_state()
