"""Settings > API keys in real Chromium: create a key, use it from code, revoke it; the API docs load
without any outside request."""

import json
import os
from urllib.parse import urlparse

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import sign_in, switch_workspace

pytestmark = [pytest.mark.browser]
SHOTS = os.environ.get("SCREENSHOT_DIR")


def _shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


def test_admin_creates_uses_and_revokes_a_key(page, live_server, demo):
    from orgs.models import Membership

    carol = Membership.objects.get(user__email="carol@example.com", org__name="Quantum Lab")
    sign_in(page, live_server, "admin@example.com")
    switch_workspace(page, "Quantum Lab")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    expect(page.get_by_text("No API keys yet.")).to_be_visible()
    page.get_by_label("Name").fill("Job runner")
    page.get_by_label("Scope").select_option("charge")
    page.get_by_role("button", name="Create key").click()
    reveal = page.get_by_test_id("new-api-key")
    expect(reveal).to_contain_text("shown only once")
    token = page.get_by_label("New API key").input_value()
    assert token.startswith("crd_")
    _shot(page, "api_keys_created.png")

    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "browser-job-1"}
    body = json.dumps({"member_id": carol.pk, "amount": 100, "description": "Simulator run"})
    response = requests.post(f"{live_server.url}/api/v1/usage", data=body, headers=headers, timeout=10)
    assert response.status_code == 201, response.text
    assert response.json()["member_balance"]["org-allocated"] == 900

    page.reload()  # a GET: the token is not shown again
    expect(page.get_by_test_id("new-api-key")).to_have_count(0)
    row = page.get_by_test_id("api-key-row").filter(has_text="Job runner")
    expect(row).to_contain_text("Charge usage")
    expect(row).not_to_contain_text("Never")
    row.get_by_role("button", name="Revoke Job runner").click()
    expect(page.get_by_text("Revoked “Job runner”")).to_be_visible()
    expect(page.get_by_test_id("api-key-row").filter(has_text="Job runner")).to_contain_text("Revoked")
    _shot(page, "api_keys_revoked.png")
    again = requests.get(f"{live_server.url}/api/v1/balance", headers=headers, timeout=10)
    assert again.status_code == 401 and again.json()["code"] == "api_key_revoked"


def test_api_docs_render_from_local_static_files_only(page, live_server, demo):
    hosts = set()
    page.on("request", lambda request: hosts.add(urlparse(request.url).netloc))
    sign_in(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/api/v1/docs")
    expect(page.get_by_text("Charge usage").first).to_be_visible()
    expect(page.get_by_text("/api/v1/usage").first).to_be_visible()
    _shot(page, "api_docs.png")
    assert hosts == {urlparse(live_server.url).netloc}
