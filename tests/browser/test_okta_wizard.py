"""An admin connects Okta in a real browser: the wizard against the demo IdP (standing in for Okta),
a test sign-in, enabling, and then a user of the account signs in through SSO. Every wizard page is
screenshotted (test-artifacts/screenshots/wizard-*.png; the README shows some of them)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.models import Account
from app.services.users import create_user
from tests.helpers.browser import screenshot

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
ADMIN = "ada@okta-co.example"
USER = "uli@okta-co.example"


@pytest.fixture
def okta_co(live_server):
    """A customer with a first admin (who has a password, to set SSO up) and a user; no IdP yet."""
    with live_server.app.app_context():
        account = Account(slug="okta-co", name="Okta Co", sso_required=False)
        db.session.add(account)
        db.session.flush()
        create_user(account, ADMIN, roles=["admin"], name="Ada Admin", password=PASSWORD, actor="test")
        create_user(account, USER, roles=["admin", "agent"], name="Uli User", actor="test")
        db.session.commit()
    return live_server


def _sign_in_at_demo_idp(page, email: str) -> None:
    """On the demo IdP's page: sign in as any address (it signs like Okta: response and assertion)."""
    page.wait_for_url("**/demo-idp/sso?*")
    page.fill("#other_email", email)
    page.click("[data-testid=demo-signin-other]")


def test_admin_connects_okta_then_a_user_signs_in(okta_co, page, new_page):
    url = okta_co.url

    # The first admin signs in with a password and opens the SSO setup.
    page.goto(f"{url}/login")
    page.click("text=Sign in with a password")
    page.fill("#pw-email", ADMIN)
    page.fill("#pw-password", PASSWORD)
    page.click("[data-testid=password-form] button[type=submit]")
    page.wait_for_url("**/portal/")
    page.click("[data-testid=nav-setup]")
    page.wait_for_url("**/setup/accounts/okta-co/")
    assert page.is_visible("[data-testid=no-connections]")
    assert page.is_disabled("[data-testid=sso-required-on]")
    screenshot(page, "wizard-01-connections")

    # Step 1: choose Okta.
    page.click("[data-testid=new-connection]")
    page.check("[data-testid=provider-okta]")
    page.fill("[data-testid=connection-name]", "Okta production")
    screenshot(page, "wizard-02-choose-provider")
    page.click("[data-testid=create-connection]")

    # Step 2: Okta's own screens, with this connection's values and copy buttons.
    page.wait_for_url("**/walkthrough")
    connection_id = int(page.url.rsplit("/", 2)[1])
    acs_url = f"{url}/saml/{connection_id}/acs"
    entity_id = f"{url}/saml/{connection_id}/metadata"
    step3 = page.locator("[data-testid=step]").nth(2)
    assert "Configure SAML: SAML Settings" in step3.inner_text()
    values = [step3.locator("input").nth(i).input_value() for i in range(step3.locator("input").count())]
    assert acs_url in values and entity_id in values
    assert "{" not in page.inner_text("[data-testid=walkthrough]")
    copy_button = step3.locator("button[data-copy]").first
    copy_button.click()
    expect(copy_button).to_have_text("Copied")  # copy.js runs under the page's CSP
    screenshot(page, "wizard-03-okta-steps")

    # The walkthrough is usable on a phone: nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "wizard-03b-okta-steps-phone")
    page.set_viewport_size({"width": 1200, "height": 900})

    # Step 3: import the IdP side; here the demo IdP's metadata, pasted.
    page.click("[data-testid=to-import]")
    page.wait_for_url("**/import")
    metadata = page.request.get(f"{url}/demo-idp/metadata").text()
    page.click("[data-testid=method-paste] summary")
    page.fill("[data-testid=metadata-xml]", metadata)
    screenshot(page, "wizard-04-import")
    page.click("[data-testid=import-paste]")
    page.wait_for_selector("[data-testid=review]")
    assert page.inner_text("[data-testid=review-entity-id]").strip() == f"{url}/demo-idp"
    assert len(page.inner_text("[data-testid=review-fingerprint]").strip()) == 95
    screenshot(page, "wizard-05-review")
    page.click("[data-testid=confirm-import]")

    # Step 4: a test sign-in at the IdP; it creates no session.
    page.wait_for_url("**/test")
    screenshot(page, "wizard-06-test")
    page.click("[data-testid=start-test]")
    _sign_in_at_demo_idp(page, ADMIN)
    page.wait_for_url(f"**/setup/connections/{connection_id}/tests/*")
    assert page.get_attribute("[data-testid=test-outcome]", "data-outcome") == "success"
    assert page.inner_text("[data-testid=test-nameid]") == ADMIN
    assert "the response (RSA-SHA256)" in page.inner_text("[data-testid=test-signed]")
    assert page.inner_text("[data-testid=test-would-sign-in]") == "Yes"
    screenshot(page, "wizard-07-test-result")

    # Step 5: enable.
    page.click("[data-testid=enable]")
    page.wait_for_url(f"**/setup/connections/{connection_id}/")
    assert page.get_attribute("[data-testid=connection-status]", "data-status") == "enabled"
    screenshot(page, "wizard-08-enabled")

    # A user of the account signs in through SSO in another browser.
    user_page = new_page()
    user_page.goto(f"{url}/login")
    user_page.fill("#sso-email", USER)
    user_page.click("[data-testid=sso-submit]")
    _sign_in_at_demo_idp(user_page, USER)
    user_page.wait_for_url("**/portal/")
    assert user_page.text_content("[data-testid=portal-email]") == USER
    screenshot(user_page, "wizard-09-user-signed-in")

    # The admin sees that sign-in in the connection's diagnostics, and may now require SSO.
    page.reload()
    attempts = page.inner_text("[data-testid=diagnostics]")
    assert USER in attempts and "Test sign-in" in attempts
    screenshot(page, "wizard-10-diagnostics")
    page.goto(f"{url}/setup/accounts/okta-co/")
    page.click("[data-testid=sso-required-on]")
    # The admin's own password session ended with the account's others: back in through SSO.
    page.wait_for_url("**/login**")
    assert "sign in with SSO" in page.inner_text("body")
    page.fill("#sso-email", ADMIN)
    page.click("[data-testid=sso-submit]")
    _sign_in_at_demo_idp(page, ADMIN)
    page.wait_for_url("**/setup/accounts/okta-co/")
    page.wait_for_selector("[data-testid=sso-required-off]")
    screenshot(page, "wizard-11-sso-required")
