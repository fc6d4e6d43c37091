"""The portal home's onboarding: an admin's checklist follows the account's real state (a connection
from none to draft, tested and enabled through the real wizard and a real signed test sign-in; users
added; SSO required; certificate expiry), a person who is not an admin sees their apps and sessions,
staff get the support console, development offers the demo IdP, and one account never sees
another's state."""

from __future__ import annotations

import datetime as dt

import lxml.html
import pytest
from flask import Flask

from app import create_app
from app.extensions import db
from app.models import Account, IdpCertificate, IdpConnection
from app.models.idp_connection import DRAFT, ENABLED, TESTED
from app.saml import certificate_info
from app.saml.urls import sp_values
from app.services.connections import add_certificates, create_connection
from app.services.onboarding import DONE, TO_DO, WAITING, admin_checklist
from app.services.users import create_user, deactivate_user
from app.timeutil import utcnow
from config import DevelopmentConfig
from tests.conftest import IDP_SSO_URL
from tests.helpers.signin import post_acs, start_test_sign_in
from tests.helpers.web import app_session, csrf_from, log_in


def _home(client) -> lxml.html.HtmlElement:
    response = client.get("/portal/")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return lxml.html.fromstring(response.get_data(as_text=True))


def _item(page: lxml.html.HtmlElement, name: str) -> lxml.html.HtmlElement:
    [item] = page.xpath(f'//*[@data-testid="item-{name}"]')
    return item


def _state_words(item: lxml.html.HtmlElement) -> str:
    """The state as the page says it in words (not by colour)."""
    [badge] = item.xpath('.//*[@data-testid="item-state"]')
    return badge.text_content().strip()


def _next_link(item: lxml.html.HtmlElement) -> tuple[str, str]:
    [link] = item.xpath('.//a[@data-testid="next-connect"]')
    return link.get("href"), link.text_content().strip()


@pytest.fixture
def acme_admin(make_account, make_user, client) -> dict:
    account = make_account("acme", "Acme Corp")
    admin = make_user(account, "admin@acme.example", "admin")
    log_in(client, admin)
    return {"account": account, "admin": admin}


def _give_idp_side(connection: IdpConnection, idp) -> None:
    """What importing the test IdP's metadata stores (the import pages have their own tests)."""
    connection.idp_entity_id = idp.entity_id
    connection.idp_sso_url = IDP_SSO_URL
    add_certificates(connection, [certificate_info(idp.cert_pem)])
    db.session.commit()


def test_checklist_follows_the_connection_from_none_to_enabled_and_sso_required(client, acme_admin, idp):
    account = acme_admin["account"]
    page = _home(client)
    assert len(page.xpath("//h1")) == 1
    assert "0 of 4 done" in page.xpath('//*[@data-testid="checklist-progress"]')[0].text_content()
    connect = _item(page, "connect")
    assert (connect.get("data-state"), connect.get("data-status")) == (TO_DO, "none")
    assert _state_words(connect) == "To do"
    assert _next_link(connect)[0] == "/setup/accounts/acme/connections/new"
    assert _item(page, "sso-required").get("data-state") == WAITING
    assert _state_words(_item(page, "sso-required")) == "Not yet"
    assert _item(page, "certificates").get("data-state") == WAITING
    assert not page.xpath('//*[@data-testid="demo-idp"]')  # not outside development

    # Draft: the admin chose Okta; the next step is its walkthrough.
    response = client.post(
        "/setup/accounts/acme/connections/new", data={"csrf_token": csrf_from(client), "provider": "okta"}
    )
    connection = db.session.query(IdpConnection).filter_by(account_id=account.id).one()
    assert response.status_code == 302
    connect = _item(_home(client), "connect")
    assert connect.get("data-status") == DRAFT and connect.get("data-state") == TO_DO
    assert connection.name in connect.text_content() and "Okta" in connect.text_content()
    assert _next_link(connect) == (
        f"/setup/connections/{connection.id}/walkthrough",
        "Next: follow the Okta setup steps",
    )

    assert 'data-testid="demo-idp"' not in client.get(f"/setup/connections/{connection.id}/import").get_data(
        as_text=True
    )

    # The IdP side is in: next, a test sign-in.
    _give_idp_side(connection, idp)
    assert _next_link(_item(_home(client), "connect"))[0] == f"/setup/connections/{connection.id}/test"

    # A real, signed test sign-in marks it tested: next, enable it.
    request_id = start_test_sign_in(client, connection, csrf_from(client))
    saml = idp.response(
        sp_values(connection).as_dict(), request_id=request_id, email="admin@acme.example", sign_response=True
    )
    post_acs(client, connection, saml)
    db.session.expire_all()
    assert db.session.get(IdpConnection, connection.id).status == TESTED
    page = _home(client)
    connect = _item(page, "connect")
    assert (connect.get("data-status"), connect.get("data-state")) == (TESTED, TO_DO)
    assert _next_link(connect) == (f"/setup/connections/{connection.id}/", "Next: enable the connection")
    assert _item(page, "sso-required").get("data-state") == WAITING  # not enabled yet

    # Enabled: step 1 is done, SSO can be required now, and the certificate has a countdown.
    assert (
        client.post(f"/setup/connections/{connection.id}/enable", data={"csrf_token": csrf_from(client)}).status_code
        == 302
    )
    page = _home(client)
    connect = _item(page, "connect")
    assert (connect.get("data-status"), connect.get("data-state")) == (ENABLED, DONE)
    assert _state_words(connect) == "✓ Done"
    sso = _item(page, "sso-required")
    assert sso.get("data-state") == TO_DO and "Off" in sso.text_content()
    certificates = _item(page, "certificates")
    not_after = db.session.get(IdpConnection, connection.id).certificates[0].not_after
    days = (not_after - utcnow()).days
    assert certificates.get("data-state") == DONE
    assert f"valid for {days:,} more days" in certificates.text_content()
    assert "2 of 4 done" in page.xpath('//*[@data-testid="checklist-progress"]')[0].text_content()

    # SSO required: the switch ends the admin's password session, so sign in again to look.
    client.post("/setup/accounts/acme/sso-required", data={"csrf_token": csrf_from(client), "required": "on"})
    db.session.expire_all()
    assert db.session.get(Account, account.id).sso_required
    log_in(client, acme_admin["admin"])
    sso = _item(_home(client), "sso-required")
    assert sso.get("data-state") == DONE and "On:" in sso.text_content()


def test_users_item_counts_active_and_deactivated_users(client, acme_admin, make_user):
    account = acme_admin["account"]
    users = _item(_home(client), "users")
    assert users.get("data-state") == TO_DO
    assert users.xpath('.//*[@data-testid="user-count"]')[0].text_content() == "1 active user"
    links = {link.get("data-testid"): link.get("href") for link in users.xpath(".//a")}
    assert links == {
        "add-user": "/admin/users/new",
        "import-users": "/admin/import",
        "scim-setup": "/setup/accounts/acme/scim/",
    }

    make_user(account, "agent@acme.example", "agent")
    gone = make_user(account, "gone@acme.example", "agent")
    deactivate_user(gone)
    db.session.commit()
    users = _item(_home(client), "users")
    assert users.get("data-state") == DONE
    assert "2 active users, 1 deactivated" in " ".join(users.text_content().split())
    assert not users.xpath('.//*[@data-testid="scim-on"]')

    client.post(
        "/setup/accounts/acme/scim/tokens", data={"csrf_token": csrf_from(client, "/setup/accounts/acme/scim/")}
    )
    assert _item(_home(client), "users").xpath('.//*[@data-testid="scim-on"]')


def test_certificate_item_warns_under_30_days_and_when_expired(acme_admin, make_connection, idp):
    """The soonest-expiring enabled connection counts, by its latest certificate (a finished
    rollover beside an old one is no risk)."""
    account = acme_admin["account"]
    connection = make_connection(account, "okta", status=ENABLED)
    now = utcnow()
    [cert] = connection.certificates
    cert.not_after = now + dt.timedelta(days=20, hours=1)
    db.session.commit()
    item = admin_checklist(account, now=now).certificates
    assert (item.days_left, item.warn, item.state) == (20, True, TO_DO)

    # A newer certificate beside it: the rollover is done, nothing to warn about.
    connection.certificates.append(
        IdpCertificate(pem=cert.pem, fingerprint_sha256="ab" * 32, not_after=now + dt.timedelta(days=400, hours=1))
    )
    db.session.commit()
    assert admin_checklist(account, now=now).certificates.state == DONE

    # A draft connection with an expired certificate signs nobody in: it does not count.
    draft = make_connection(account, "google", status=DRAFT)
    draft.certificates[0].not_after = now - dt.timedelta(days=3)
    db.session.commit()
    assert admin_checklist(account, now=now).certificates.days_left == 400

    connection.status = DRAFT
    draft.status = ENABLED
    db.session.commit()
    item = admin_checklist(account, now=now).certificates
    assert item.expired and item.state == TO_DO and item.connection_id == draft.id


def test_certificate_warning_on_the_page(client, acme_admin, make_connection):
    connection = make_connection(acme_admin["account"], "okta", status=ENABLED)
    connection.certificates[0].not_after = utcnow() + dt.timedelta(days=12, hours=1)
    db.session.commit()
    item = _item(_home(client), "certificates")
    assert item.get("data-state") == TO_DO and _state_words(item) == "To do"
    assert "Expires in 12 days" in item.text_content()
    assert item.xpath('.//a[@data-testid="cert-link"]')[0].get("href") == f"/setup/connections/{connection.id}/"


def test_an_admin_never_sees_another_accounts_state(client, acme_admin, make_account, make_user, make_connection):
    globex = make_account("globex", "Globex")
    other = make_connection(globex, "google", status=ENABLED)
    other.name = "Globex Google Workspace"
    other.certificates[0].not_after = utcnow() + dt.timedelta(days=5)
    make_user(globex, "a@globex.example", "admin")
    make_user(globex, "b@globex.example", "agent")
    globex.sso_required = True
    db.session.commit()

    text = _home(client).text_content()
    page = _home(client)
    assert "Globex" not in text and f"/setup/connections/{other.id}/" not in lxml.html.tostring(page, encoding=str)
    assert _item(page, "connect").get("data-status") == "none"
    assert _item(page, "users").xpath('.//*[@data-testid="user-count"]')[0].text_content() == "1 active user"
    assert _item(page, "sso-required").get("data-state") == WAITING
    assert _item(page, "certificates").get("data-state") == WAITING
    assert not page.xpath('//*[@data-testid="cert-alerts"]')


def test_a_person_who_is_not_an_admin_sees_apps_and_sessions_not_the_checklist(client, make_account, make_user):
    """Agents have no portal role (they are refused at sign-in), so the person here is staff: a role
    that opens the portal without being an account's admin."""
    staff_account = make_account("staff", "Phone Company Staff")
    staff = make_user(staff_account, "helper@phone.example", "support")
    log_in(client, staff)
    app_session(staff, "desktop")
    page = _home(client)
    assert not page.xpath('//*[@data-testid="checklist"]')
    assert page.xpath('//*[@data-testid="roles"]')[0].text_content() == "support"
    assert [span.get("data-app") for span in page.xpath('//*[@data-testid="apps"]/span')] == ["portal"]
    assert "You have 2 active sessions" in page.xpath('//*[@data-testid="session-count"]')[0].text_content()
    assert page.xpath('//a[@data-testid="my-sessions-link"]')[0].get("href") == "/me/sessions"
    assert page.xpath('//a[@data-testid="support-console-link"]')[0].get("href") == "/support/sessions"


def test_an_admin_sees_their_apps_and_sessions_and_no_support_link(client, acme_admin):
    page = _home(client)
    assert [span.text_content() for span in page.xpath('//*[@data-testid="apps"]/span')] == [
        "Account Portal",
        "Desktop app",
        "Mobile app",
    ]
    assert "You have 1 active session:" in page.xpath('//*[@data-testid="session-count"]')[0].text_content()
    assert not page.xpath('//*[@data-testid="support-console-link"]')


# --- development: the demo IdP ------------------------------------------------------------------


@pytest.fixture
def development_app(tmp_path) -> Flask:
    settings = type(
        "Dev",
        (DevelopmentConfig,),
        {
            "BASE_URL": "https://localhost",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/dev.db",
            "RATELIMIT_ENABLED": False,
        },
    )
    application = create_app(settings)
    application.instance_path = str(tmp_path / "instance")
    with application.app_context():
        db.create_all()
    return application


def test_development_offers_the_demo_idp_until_the_idp_side_is_in(development_app):
    with development_app.app_context():
        account = Account(slug="newco", name="NewCo")
        db.session.add(account)
        db.session.flush()
        admin = create_user(account, "admin@newco.example", roles=["admin"])
        db.session.commit()
        client = development_app.test_client()
        log_in(client, admin)
        page = _home(client)
        [offer] = page.xpath('//*[@data-testid="demo-idp"]')
        [field] = offer.xpath(".//input")
        assert field.get("value") == "https://localhost/demo-idp/metadata"
        [button] = offer.xpath(".//button[@data-copy]")
        assert button.get("data-copy") == "#" + field.get("id")
        assert client.get("/demo-idp/metadata").status_code == 200  # the URL it offers works

        # The wizard's import page offers it too, beside the metadata URL field.
        draft = create_connection(account, "generic", name="Trying it")
        db.session.commit()
        import_page = lxml.html.fromstring(client.get(f"/setup/connections/{draft.id}/import").get_data(as_text=True))
        [offer] = import_page.xpath('//*[@data-testid="method-url"]//*[@data-testid="demo-idp"]')
        assert offer.xpath(".//input")[0].get("value") == "https://localhost/demo-idp/metadata"
        assert _home(client).xpath('//*[@data-testid="demo-idp"]')  # draft, IdP side still missing

        # Once a connection is enabled, the offer is gone from the home page.
        create_connection(account, "generic", name="Real IdP").status = ENABLED
        db.session.commit()
        assert not _home(client).xpath('//*[@data-testid="demo-idp"]')
        db.session.remove()
