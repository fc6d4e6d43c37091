"""The setup wizard's pages: who may open them, the connections list, choosing a provider, every
provider's walkthrough with real values, settings, disable, delete and "SSO required"."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest

from app.extensions import db
from app.idp_plugins import PLUGINS
from app.models import Account, IdpCertificate, IdpConnection
from app.models.idp_connection import DRAFT, ENABLED, TESTED
from app.saml.urls import sp_values
from app.timeutil import utcnow
from tests.helpers.audit import audit_events
from tests.helpers.web import log_in

PLUGIN_KEYS = [plugin.key for plugin in PLUGINS]


@pytest.fixture
def tenants(make_account, make_user, make_connection) -> dict:
    """Two accounts, each with an admin, an agent and a draft connection; plus a staff member."""
    acme = make_account("acme", "Acme Corp")
    globex = make_account("globex", "Globex")
    staff_account = make_account("staff", "Phone Company Staff")
    return {
        "acme": acme,
        "globex": globex,
        "admin": make_user(acme, "admin@acme.example", "admin"),
        "agent": make_user(acme, "agent@acme.example", "agent"),
        "other_admin": make_user(globex, "admin@globex.example", "admin"),
        "staff": make_user(staff_account, "helper@phone.example", "support"),
        "connection": make_connection(acme, "okta", status=DRAFT),
        "other_connection": make_connection(globex, "google", status=DRAFT),
    }


def _connection_pages(connection: IdpConnection) -> list[str]:
    base = f"/setup/connections/{connection.id}"
    return [f"{base}/", f"{base}/walkthrough", f"{base}/import", f"{base}/test", f"{base}/settings", f"{base}/delete"]


def _account_pages(account: Account) -> list[str]:
    return [f"/setup/accounts/{account.slug}/", f"/setup/accounts/{account.slug}/connections/new"]


# --- access -----------------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in(client, tenants):
    for url in ["/setup/", *_account_pages(tenants["acme"]), *_connection_pages(tenants["connection"])]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.location.startswith("/login?next=")


def test_agent_is_refused(client, csrf_token, tenants):
    """Agents have no portal role: their session does not open the portal (sign-in page) or, should
    one exist, the role check answers 403. Never the page."""
    log_in(client, tenants["agent"])
    for url in ["/setup/", *_account_pages(tenants["acme"]), *_connection_pages(tenants["connection"])]:
        response = client.get(url)
        assert response.status_code in (302, 403), url
        assert response.status_code == 403 or response.location.startswith("/login?next=")
    response = client.post(
        f"/setup/connections/{tenants['connection'].id}/delete", data={"csrf_token": csrf_token(), "confirm": "y"}
    )
    assert response.status_code in (302, 403)
    assert db.session.get(IdpConnection, tenants["connection"].id) is not None


def test_other_accounts_admin_gets_404_everywhere(client, csrf_token, tenants):
    log_in(client, tenants["other_admin"])
    for url in [*_account_pages(tenants["acme"]), *_connection_pages(tenants["connection"])]:
        assert client.get(url).status_code == 404, url
    connection = tenants["connection"]
    token = csrf_token()
    for action in ("enable", "disable", "delete", "refresh", "test", "import/paste", "import/confirm", "settings"):
        response = client.post(
            f"/setup/connections/{connection.id}/{action}", data={"csrf_token": token, "confirm": "y"}
        )
        assert response.status_code == 404, action
    response = client.post("/setup/accounts/acme/sso-required", data={"csrf_token": token, "required": "on"})
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(IdpConnection, connection.id).status == DRAFT


def test_admin_sees_own_account_only(client, tenants):
    log_in(client, tenants["admin"])
    response = client.get("/setup/")
    assert response.status_code == 302 and response.location == "/setup/accounts/acme/"
    for url in [*_account_pages(tenants["acme"]), *_connection_pages(tenants["connection"])]:
        assert client.get(url).status_code == 200, url
    page = client.get("/setup/accounts/acme/").get_data(as_text=True)
    assert tenants["connection"].name in page
    assert "Google" not in page  # globex's connection


def test_staff_choose_any_account(client, tenants):
    """Staff read every account's setup; the pages that are only a form for a change are refused
    (tests/test_staff_read_only.py covers every change)."""
    log_in(client, tenants["staff"])
    listing = client.get("/setup/").get_data(as_text=True)
    assert "Acme Corp" in listing and "Globex" in listing
    assert "Globex" not in client.get("/setup/", query_string={"q": "acm"}).get_data(as_text=True)
    form_only = ("/connections/new", "/import", "/settings", "/delete")
    for url in [*_account_pages(tenants["globex"]), *_connection_pages(tenants["other_connection"])]:
        expected = 403 if url.endswith(form_only) else 200
        assert client.get(url).status_code == expected, url


def test_nav_link_only_for_admins_and_staff(client, tenants):
    log_in(client, tenants["agent"])
    assert 'data-testid="nav-setup"' not in client.get("/login").get_data(as_text=True)
    log_in(client, tenants["admin"])
    assert 'data-testid="nav-setup"' in client.get("/login").get_data(as_text=True)


def test_post_without_csrf_token_is_refused(client, tenants):
    log_in(client, tenants["admin"])
    response = client.post("/setup/accounts/acme/connections/new", data={"provider": "okta"})
    assert response.status_code == 400
    assert "CSRF_FAILED" in response.get_data(as_text=True)
    assert db.session.query(IdpConnection).filter_by(account_id=tenants["acme"].id).count() == 1


# --- list and new connection ------------------------------------------------------------------


def test_list_shows_status_provider_and_earliest_expiry(client, tenants, make_connection):
    log_in(client, tenants["admin"])
    connection = tenants["connection"]
    later = utcnow() + dt.timedelta(days=3000)
    connection.certificates.append(IdpCertificate(pem="x", fingerprint_sha256="AA:" * 31 + "AA", not_after=later))
    db.session.commit()
    earliest = min(cert.not_after for cert in connection.certificates)
    page = client.get("/setup/accounts/acme/").get_data(as_text=True)
    row = page[page.index(f'data-testid="connection-row-{connection.id}"') :]
    row = row[: row.index("</tr>")]
    assert "Okta" in row and 'data-status="draft"' in row
    assert earliest.strftime("%Y-%m-%d") in row
    assert later.strftime("%Y-%m-%d") not in row
    assert "cert-expired" not in row


def test_list_calls_out_an_expired_certificate(client, tenants):
    log_in(client, tenants["admin"])
    connection = tenants["connection"]
    expired = utcnow() - dt.timedelta(days=3)
    connection.certificates.append(IdpCertificate(pem="x", fingerprint_sha256="BB:" * 31 + "BB", not_after=expired))
    db.session.commit()
    page = client.get("/setup/accounts/acme/").get_data(as_text=True)
    assert f"Expired {expired:%Y-%m-%d}" in page
    assert 'data-testid="cert-expired"' in page
    assert 'data-testid="expired-warning"' in client.get(f"/setup/connections/{connection.id}/").get_data(as_text=True)


def test_new_connection_offers_every_provider(client, tenants):
    log_in(client, tenants["admin"])
    page = client.get("/setup/accounts/acme/connections/new").get_data(as_text=True)
    for plugin in PLUGINS:
        assert f'data-testid="provider-{plugin.key}"' in page
        assert html.escape(plugin.display_name) in page


def test_create_draft_connection(client, csrf_token, tenants):
    log_in(client, tenants["admin"])
    response = client.post(
        "/setup/accounts/acme/connections/new",
        data={"csrf_token": csrf_token(), "provider": "entra", "name": "Entra production"},
    )
    assert response.status_code == 302
    connection = db.session.query(IdpConnection).filter_by(plugin_key="entra").one()
    assert response.location == f"/setup/connections/{connection.id}/walkthrough"
    assert connection.account_id == tenants["acme"].id
    assert connection.status == DRAFT and connection.name == "Entra production"
    assert connection.allow_idp_initiated is False
    [event] = audit_events("connection.create", connection)
    assert event.actor == "admin@acme.example"


@pytest.mark.parametrize("provider", ["", "not-a-provider", "okta<script>"])
def test_create_with_bad_provider_is_refused(client, csrf_token, tenants, provider):
    log_in(client, tenants["admin"])
    response = client.post(
        "/setup/accounts/acme/connections/new", data={"csrf_token": csrf_token(), "provider": provider}
    )
    assert response.status_code == 422
    assert "field-error" in response.get_data(as_text=True)
    assert db.session.query(IdpConnection).filter_by(account_id=tenants["acme"].id).count() == 1


def test_create_with_too_long_name_is_refused(client, csrf_token, tenants):
    log_in(client, tenants["admin"])
    response = client.post(
        "/setup/accounts/acme/connections/new", data={"csrf_token": csrf_token(), "provider": "okta", "name": "x" * 201}
    )
    assert response.status_code == 422
    assert db.session.query(IdpConnection).filter_by(account_id=tenants["acme"].id).count() == 1


# --- walkthroughs -----------------------------------------------------------------------------


@pytest.mark.parametrize("plugin_key", PLUGIN_KEYS)
def test_walkthrough_renders_with_this_connections_values(client, csrf_token, tenants, plugin_key):
    log_in(client, tenants["admin"])
    client.post("/setup/accounts/acme/connections/new", data={"csrf_token": csrf_token(), "provider": plugin_key})
    connection = (
        db.session.query(IdpConnection)
        .filter_by(plugin_key=plugin_key, account_id=tenants["acme"].id)
        .order_by(IdpConnection.id.desc())
        .first()
    )
    plugin = PLUGINS[PLUGIN_KEYS.index(plugin_key)]
    # A provider with several setup paths (Salesforce) shows one at a time: the first one here
    # (tests/test_salesforce_walkthrough.py covers the choice).
    path = plugin.setup_paths[0].key if plugin.setup_paths else None
    response = client.get(
        f"/setup/connections/{connection.id}/walkthrough", query_string={"path": path} if path else {}
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    walkthrough = page[
        page.index('data-testid="walkthrough"') : page.index("</ol>", page.index('data-testid="walkthrough"'))
    ]
    values = sp_values(connection)
    assert values.sp_entity_id in walkthrough
    assert values.acs_url in walkthrough or re.escape(values.acs_url) in html.unescape(walkthrough)
    assert f"/saml/{connection.id}/" in values.acs_url
    assert "{" not in html.unescape(walkthrough) and "}" not in html.unescape(walkthrough)
    assert walkthrough.count('data-testid="step"') == len([s for s in plugin.setup_steps if s.path in (None, path)])
    assert 'data-copy="#' in walkthrough
    assert f'href="/saml/{connection.id}/metadata"' in page  # download of the SP metadata


def test_walkthrough_uses_account_name(client, tenants):
    log_in(client, tenants["admin"])
    page = client.get(f"/setup/connections/{tenants['connection'].id}/walkthrough").get_data(as_text=True)
    assert "Acme Corp phone system" in page


def test_sp_metadata_download_is_real_metadata(client, tenants):
    connection = tenants["connection"]
    response = client.get(f"/saml/{connection.id}/metadata")
    assert response.status_code == 200
    assert sp_values(connection).acs_url in response.get_data(as_text=True)


# --- settings ---------------------------------------------------------------------------------


def test_edit_settings(client, csrf_token, tenants):
    log_in(client, tenants["admin"])
    connection = tenants["connection"]
    response = client.post(
        f"/setup/connections/{connection.id}/settings",
        data={
            "csrf_token": csrf_token(),
            "name": "Okta (prod)",
            "email_attributes": "mail\r\nworkEmail\r\n",
            "signed_element": "assertion",
            "nameid_format": "",
            "allow_idp_initiated": "y",
        },
    )
    assert response.status_code == 302
    db.session.expire_all()
    connection = db.session.get(IdpConnection, connection.id)
    assert connection.name == "Okta (prod)"
    assert connection.settings == {"email_attributes": ["mail", "workEmail"], "signed_element": "assertion"}
    assert connection.allow_idp_initiated is True
    [event] = audit_events("connection.update", connection)
    assert set(event.details["changed"]) == {"name", "email_attributes", "signed_element", "allow_idp_initiated"}
    page = client.get(f"/setup/connections/{connection.id}/").get_data(as_text=True)
    assert "mail, workEmail" in page and "Accepted" in page

    # Empty overrides fall back to the plugin's defaults; IdP-initiated off again.
    client.post(
        f"/setup/connections/{connection.id}/settings",
        data={
            "csrf_token": csrf_token(),
            "name": "Okta (prod)",
            "email_attributes": "",
            "signed_element": "",
            "nameid_format": "",
        },
    )
    db.session.expire_all()
    connection = db.session.get(IdpConnection, connection.id)
    assert connection.settings == {} and connection.allow_idp_initiated is False


def test_settings_form_shows_provider_defaults(client, tenants):
    log_in(client, tenants["admin"])
    page = client.get(f"/setup/connections/{tenants['connection'].id}/settings").get_data(as_text=True)
    assert "Okta&#39;s default: the response or the assertion (either one)" in page
    assert (
        'data-testid="allow-idp-initiated"' in page
        and "checked" not in page.split('data-testid="allow-idp-initiated"')[0][-200:]
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("signed_element", "nothing"),
        ("nameid_format", "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"),
        ("email_attributes", "has space"),
        ("name", "n" * 201),
    ],
)
def test_bad_settings_are_refused(client, csrf_token, tenants, field, value):
    log_in(client, tenants["admin"])
    connection = tenants["connection"]
    data = {
        "csrf_token": csrf_token(),
        "name": "Okta",
        "email_attributes": "",
        "signed_element": "",
        "nameid_format": "",
    }
    data[field] = value
    response = client.post(f"/setup/connections/{connection.id}/settings", data=data)
    assert response.status_code == 422
    assert 'data-testid="settings-error"' in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(IdpConnection, connection.id).settings == {}
    assert audit_events("connection.update") == []


# --- disable, delete ---------------------------------------------------------------------------


def test_disable_needs_confirmation(client, csrf_token, tenants):
    log_in(client, tenants["admin"])
    connection = tenants["connection"]
    connection.status = ENABLED
    db.session.commit()
    client.post(f"/setup/connections/{connection.id}/disable", data={"csrf_token": csrf_token()})
    db.session.expire_all()
    assert db.session.get(IdpConnection, connection.id).status == ENABLED
    client.post(f"/setup/connections/{connection.id}/disable", data={"csrf_token": csrf_token(), "confirm": "y"})
    db.session.expire_all()
    # Enabled from the command line without a test: back to draft, so the wizard asks for a test.
    assert db.session.get(IdpConnection, connection.id).status == DRAFT
    assert len(audit_events("connection.disable", connection)) == 1


def test_delete_needs_confirmation_and_keeps_audit_trail(client, csrf_token, tenants):
    log_in(client, tenants["admin"])
    connection_id = tenants["connection"].id
    response = client.post(f"/setup/connections/{connection_id}/delete", data={"csrf_token": csrf_token()})
    assert response.status_code == 422
    assert db.session.get(IdpConnection, connection_id) is not None
    response = client.post(
        f"/setup/connections/{connection_id}/delete", data={"csrf_token": csrf_token(), "confirm": "y"}
    )
    assert response.status_code == 302 and response.location == "/setup/accounts/acme/"
    db.session.expire_all()
    assert db.session.get(IdpConnection, connection_id) is None
    [event] = audit_events("connection.delete")
    assert event.connection_id == connection_id and event.details["provider"] == "okta"
    assert client.get(f"/setup/connections/{connection_id}/").status_code == 404


# --- SSO required -----------------------------------------------------------------------------


def test_sso_required_cannot_be_switched_on_without_a_tested_enabled_connection(client, csrf_token, tenants):
    log_in(client, tenants["admin"])
    connection = tenants["connection"]
    connection.status = ENABLED  # enabled (e.g. from the command line) but never tested
    db.session.commit()
    page = client.get("/setup/accounts/acme/").get_data(as_text=True)
    assert re.search(r'data-testid="sso-required-on"\s+disabled', page)
    response = client.post("/setup/accounts/acme/sso-required", data={"csrf_token": csrf_token(), "required": "on"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Account, tenants["acme"].id).sso_required is False
    assert "can be required only while" in client.get("/setup/accounts/acme/").get_data(as_text=True)
    assert audit_events("account.sso_required") == []


def test_sso_required_with_bad_value_changes_nothing(client, csrf_token, tenants):
    log_in(client, tenants["admin"])
    client.post("/setup/accounts/acme/sso-required", data={"csrf_token": csrf_token(), "required": "yes please"})
    db.session.expire_all()
    assert db.session.get(Account, tenants["acme"].id).sso_required is False


def test_sso_required_can_always_be_switched_off(client, csrf_token, tenants):
    log_in(client, tenants["admin"])
    account = tenants["acme"]
    account.sso_required = True
    db.session.commit()
    client.post("/setup/accounts/acme/sso-required", data={"csrf_token": csrf_token(), "required": "off"})
    db.session.expire_all()
    assert db.session.get(Account, account.id).sso_required is False
    [event] = audit_events("account.sso_required")
    assert event.details == {"sso_required": False} and event.actor == "admin@acme.example"


def test_enabled_connection_of_sso_required_account_cannot_be_disabled_or_deleted(client, csrf_token, tenants):
    log_in(client, tenants["admin"])
    account, connection = tenants["acme"], tenants["connection"]
    account.sso_required = True
    connection.status = ENABLED
    db.session.commit()
    client.post(f"/setup/connections/{connection.id}/disable", data={"csrf_token": csrf_token(), "confirm": "y"})
    client.post(f"/setup/connections/{connection.id}/delete", data={"csrf_token": csrf_token(), "confirm": "y"})
    db.session.expire_all()
    assert db.session.get(IdpConnection, connection.id).status == ENABLED
    assert "Turn off" in client.get(f"/setup/connections/{connection.id}/").get_data(as_text=True)


def test_wizard_does_not_enable_an_untested_connection(client, csrf_token, tenants):
    log_in(client, tenants["admin"])
    connection = tenants["connection"]
    client.post(f"/setup/connections/{connection.id}/enable", data={"csrf_token": csrf_token()})
    db.session.expire_all()
    assert db.session.get(IdpConnection, connection.id).status == DRAFT
    assert "Run a test sign-in" in client.get(f"/setup/connections/{connection.id}/").get_data(as_text=True)


def test_enabling_replaces_the_accounts_other_enabled_connection(client, csrf_token, tenants, make_connection):
    log_in(client, tenants["admin"])
    old = make_connection(tenants["acme"], "generic", status=ENABLED)
    new = tenants["connection"]
    new.status = TESTED
    db.session.commit()
    client.post(f"/setup/connections/{new.id}/enable", data={"csrf_token": csrf_token()})
    db.session.expire_all()
    assert db.session.get(IdpConnection, new.id).status == ENABLED
    assert db.session.get(IdpConnection, old.id).status == DRAFT
    [enable] = audit_events("connection.enable", new)
    assert enable.details == {"replaced": [old.id]}
    assert audit_events("connection.disable", old)[0].details == {"replaced_by": new.id}


def test_huge_or_unknown_ids_are_404(client, tenants):
    log_in(client, tenants["admin"])
    connection = tenants["connection"]
    for url in [
        "/setup/connections/99999999999999999999999/",
        "/setup/connections/2147483648/walkthrough",
        f"/setup/connections/{connection.id}/tests/99999999999999999999",
        "/setup/accounts/" + "x" * 500 + "/",
    ]:
        assert client.get(url).status_code == 404, url


def test_walkthrough_explains_the_optional_features(client, acme):
    """The walkthrough page says where the IdP sets Single Logout, encryption and request signing."""
    from tests.helpers.web import log_in

    log_in(client, acme["admin"])
    page = client.get(f"/setup/connections/{acme['connection'].id}/walkthrough").get_data(as_text=True)
    assert 'data-testid="option-help"' in page
    assert page.count('data-testid="option"') == 3
    assert acme["sp"]["sls_url"] in page


def test_security_options_from_the_settings_page(client, acme, make_account, make_connection, make_user):
    """The page turns the options on with the same checks as `flask idp set`, and says why not."""
    from app.saml import active_encryption_keys, resolve_options
    from tests.helpers.web import csrf_from, log_in

    connection = acme["connection"]
    log_in(client, acme["admin"])
    page = client.get(f"/setup/connections/{connection.id}/settings").get_data(as_text=True)
    assert 'data-testid="options-form"' in page
    token = csrf_from(client, f"/setup/connections/{connection.id}/settings")
    response = client.post(
        f"/setup/connections/{connection.id}/options",
        data={"csrf_token": token, "single_logout": "y", "encrypt_assertions": "accept"},
    )
    assert response.status_code == 302
    db.session.expire_all()
    options = resolve_options(connection)
    assert options.single_logout and options.encrypt_assertions == "accept" and not options.sign_requests
    assert len(active_encryption_keys(connection)) == 1
    [event] = audit_events("connection.update", connection)
    assert set(event.details["changed"]) == {"single_logout", "encrypt_assertions"}
    assert client.post(f"/setup/connections/{connection.id}/options", data={"single_logout": "y"}).status_code == 400

    google = make_connection(acme["account"], "google")
    token = csrf_from(client, f"/setup/connections/{google.id}/settings")
    response = client.post(
        f"/setup/connections/{google.id}/options",
        data={"csrf_token": token, "single_logout": "y", "encrypt_assertions": "off"},
    )
    assert "no SAML Single Logout" in client.get(response.location).get_data(as_text=True)
    db.session.expire_all()
    assert resolve_options(google).single_logout is False
