"""SCIM end to end in a real browser: an admin creates a SCIM token on the account's SCIM page, the
token provisions a user, that user signs in through the demo IdP, the IdP deactivates them over
SCIM, and their open browser is signed out on its next click (DESIGN rule 5)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from app.demo_idp.setup import ensure_demo
from app.extensions import db
from tests.helpers.browser import demo_sign_in, screenshot

pytestmark = pytest.mark.browser

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
def demo(live_server):
    with live_server.app.app_context():
        ensure_demo()
        db.session.commit()
    return live_server


def scim(base_url: str, token: str, method: str, path: str, body: dict) -> tuple[int, dict]:
    """One request of the IdP's SCIM client, over real HTTP."""
    request = urllib.request.Request(
        f"{base_url}{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_scim_token_provisions_a_user_whose_browser_is_signed_out_when_the_idp_deactivates_them(demo, page, new_page):
    # The admin creates a token on the SCIM page (shown once).
    demo_sign_in(page, demo.url, "alice@demo.example")
    page.click("[data-testid=nav-setup]")
    page.click("[data-testid=to-scim]")
    page.wait_for_url("**/scim/")
    page.fill("#name", "Demo IdP")
    page.click("[data-testid=create-token]")
    page.wait_for_selector("[data-testid=new-token]")
    token = page.input_value("#scim-new-token")
    base_url = page.input_value("#scim-base-url")
    assert base_url == f"{demo.url}/scim/v2" and token.startswith("scim_")
    screenshot(page, "40-scim-token-created")

    # The IdP provisions a user with the token.
    status, created = scim(
        base_url,
        token,
        "POST",
        "/Users",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "Sam.Scim@demo.example",
            "name": {"givenName": "Sam", "familyName": "Scim"},
            "active": True,
            "roles": [{"value": "admin"}],
        },
    )
    assert status == 201 and created["userName"] == "sam.scim@demo.example"

    # That user signs in through the demo IdP.
    sam = new_page()
    demo_sign_in(sam, demo.url, "sam.scim@demo.example")
    assert sam.text_content("[data-testid=portal-email]") == "sam.scim@demo.example"

    # The admin sees where the user came from.
    page.goto(f"{demo.url}/admin/users?q=sam")
    assert (
        page.text_content("[data-testid=user-row][data-email='sam.scim@demo.example'] [data-testid=user-source]")
        == "SCIM (IdP)"
    )

    # The IdP deactivates the user; their open browser is out on its next click.
    status, patched = scim(
        base_url,
        token,
        "PATCH",
        f"/Users/{created['id']}",
        {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )
    assert status == 200 and patched["active"] is False
    sam.click("[data-testid=nav-my-sessions]")
    sam.wait_for_url(lambda url: "/login?next=" in url)
    assert sam.locator("[data-testid=sso-form]").is_visible()
    assert "You were signed out by your company's administrator" in sam.text_content("[data-testid=session-ended]")
    screenshot(sam, "41-scim-deactivated-user-back-at-sign-in")

    # The token's last use shows on the SCIM page.
    page.goto(f"{demo.url}/setup/accounts/demo/scim/")
    assert page.text_content("[data-testid=last-used]").strip() != "Never"
