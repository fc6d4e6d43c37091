"""Salesforce's two setup paths: the walkthrough asks which one the admin takes (a button per path,
no JavaScript needed; the choice is kept on the connection, so the wizard's links come back to it,
and can be changed) and shows only that path's steps; staff, who change nothing, get links with
``?path=``. The external client app's XML files are copyable blocks with a download that carries
this connection's values and the admin's own email as the contact."""

from __future__ import annotations

import lxml.etree
import lxml.html
import pytest

from app.extensions import db
from app.idp_plugins import get_plugin
from app.idp_plugins.salesforce import CONNECTED_APP, EXTERNAL_CLIENT_APP
from app.models.idp_connection import DRAFT
from app.saml.urls import sp_values
from tests.helpers.web import csrf_from, log_in

SF_FILES = ("PhoneSystemSSO.eca-meta.xml", "PhoneSystemSSO.ecaPlcy-meta.xml", "PhoneSystemSSO.ecaSamlPlcy-meta.xml")


@pytest.fixture
def sf(make_account, make_user, make_connection) -> dict:
    acme = make_account("acme", "Acme Corp")
    globex = make_account("globex", "Globex")
    return {
        "admin": make_user(acme, "admin@acme.example", "admin"),
        "other_admin": make_user(globex, "admin@globex.example", "admin"),
        "staff": make_user(make_account("staff", "Staff"), "helper@phone.example", "support"),
        "connection": make_connection(acme, "salesforce", status=DRAFT),
        "okta": make_connection(acme, "okta", status=DRAFT),
    }


def _walkthrough(client, connection, path: str | None = None) -> lxml.html.HtmlElement:
    response = client.get(
        f"/setup/connections/{connection.id}/walkthrough", query_string={"path": path} if path else {}
    )
    assert response.status_code == 200
    return lxml.html.fromstring(response.get_data(as_text=True))


def _step_titles(page) -> list[str]:
    return [h2.text_content().split(": ", 1)[1] for h2 in page.xpath('//*[@data-testid="step"]/header/h2')]


def test_without_a_choice_the_page_asks_and_shows_no_path_steps(client, sf):
    log_in(client, sf["admin"])
    page = _walkthrough(client, sf["connection"])
    assert _step_titles(page) == ["Enable Salesforce as an identity provider", "Choose how to register us"]
    forms = page.xpath('//*[@data-testid="path-choice"]//form')
    assert {form.get("action") for form in forms} == {f"/setup/connections/{sf['connection'].id}/walkthrough/path"}
    assert [form.xpath('.//input[@name="path"]/@value')[0] for form in forms] == [CONNECTED_APP, EXTERNAL_CLIENT_APP]
    assert all(form.xpath('.//input[@name="csrf_token"]') for form in forms)
    assert not page.xpath('//*[@aria-current="true"]')
    assert page.xpath('//*[@data-testid="path-needed"]')
    assert not page.xpath('//*[@data-testid="file-download"]')
    assert "sf project" not in page.text_content()


def test_an_unknown_path_is_no_choice(client, sf):
    log_in(client, sf["admin"])
    page = _walkthrough(client, sf["connection"], "<script>")
    assert len(_step_titles(page)) == 2 and page.xpath('//*[@data-testid="path-needed"]')


def test_the_connected_app_path_shows_only_its_steps(client, sf):
    log_in(client, sf["admin"])
    page = _walkthrough(client, sf["connection"], CONNECTED_APP)
    assert _step_titles(page) == [
        "Enable Salesforce as an identity provider",
        "Choose how to register us",
        "Configure the connected app",
        "Send the user's email",
        "Give users access and copy the metadata URL",
    ]
    [chosen] = page.xpath('//*[@aria-current="true"]')
    assert chosen.get("data-testid") == f"path-{CONNECTED_APP}" and "(chosen)" in chosen.text_content()
    assert "connected app" in page.xpath("//title")[0].text_content()
    text = page.text_content()
    assert "sf project" not in text and "ecaSamlPlcy" not in text
    assert not page.xpath('//*[@data-testid="file-download"]') and not page.xpath('//*[@data-testid="path-needed"]')
    values = [field.get("value") for field in page.xpath('//*[@data-testid="walkthrough"]//input')]
    assert sp_values(sf["connection"]).acs_url in values and "$User.Email" in values


def test_the_external_client_app_path_shows_each_xml_file_to_copy_and_download(client, sf):
    log_in(client, sf["admin"])
    connection = sf["connection"]
    sp = sp_values(connection)
    page = _walkthrough(client, connection, EXTERNAL_CLIENT_APP)
    assert _step_titles(page) == [
        "Enable Salesforce as an identity provider",
        "Choose how to register us",
        "Write the external client app metadata",
        "Deploy the external client app",
        "Give users access and copy the metadata URL",
    ]
    assert "Configure the connected app" not in page.text_content()
    downloads = page.xpath('//a[@data-testid="file-download"]')
    assert [link.get("download") for link in downloads] == list(SF_FILES)
    for link, name in zip(downloads, SF_FILES, strict=True):
        assert link.get("href") == f"/setup/connections/{connection.id}/walkthrough/files/{name}"
        # The block right before the link is the file itself, with a Copy button.
        [block] = link.xpath("../preceding-sibling::div[@class='copy-field'][1]")
        [textarea] = block.xpath(".//textarea")
        [button] = block.xpath(".//button[@data-copy]")
        assert button.get("data-copy") == "#" + textarea.get("id")
        assert page.xpath(f'//label[@for="{textarea.get("id")}"]')[0].text_content().endswith(name)
        assert textarea.text_content() == client.get(link.get("href")).get_data(as_text=True)
    saml_file = page.xpath("//textarea")[2].text_content()
    assert f"<acsUrl>{sp.acs_url}</acsUrl>" in saml_file and f"<entityUrl>{sp.sp_entity_id}</entityUrl>" in saml_file
    commands = [field.get("value") for field in page.xpath('//*[@data-testid="walkthrough"]//input')]
    assert "sf project deploy start --source-dir force-app --target-org phone-sso-org" in commands


def test_download_is_an_xml_attachment_with_this_connections_values(client, sf):
    log_in(client, sf["admin"])
    connection = sf["connection"]
    sp = sp_values(connection)
    response = client.get(f"/setup/connections/{connection.id}/walkthrough/files/PhoneSystemSSO.ecaSamlPlcy-meta.xml")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="PhoneSystemSSO.ecaSamlPlcy-meta.xml"'
    root = lxml.etree.fromstring(response.data)  # well-formed XML, as the Salesforce CLI needs
    ns = {"md": "http://soap.sforce.com/2006/04/metadata"}
    assert root.tag == "{http://soap.sforce.com/2006/04/metadata}ExtlClntAppSamlConfigurablePolicies"
    assert root.findtext("md:acsUrl", namespaces=ns) == sp.acs_url
    assert root.findtext("md:entityUrl", namespaces=ns) == sp.sp_entity_id
    assert root.findtext("md:customAttributes/md:formula", namespaces=ns) == "$User.Email"
    policies = client.get(f"/setup/connections/{connection.id}/walkthrough/files/PhoneSystemSSO.ecaPlcy-meta.xml")
    assert lxml.etree.fromstring(policies.data).findtext("md:startUrl", namespaces=ns) == sp.start_url


def test_staff_may_download_but_other_accounts_get_404(client, sf):
    connection = sf["connection"]
    url = f"/setup/connections/{connection.id}/walkthrough/files/{SF_FILES[0]}"
    assert client.get(url).status_code == 302  # anonymous: to sign in
    log_in(client, sf["other_admin"])
    response = client.get(url)
    assert response.status_code == 404 and "attachment" not in response.headers.get("Content-Disposition", "")
    assert client.get(f"/setup/connections/{connection.id}/walkthrough").status_code == 404
    log_in(client, sf["staff"])
    assert client.get(url).status_code == 200


def test_unknown_files_and_other_providers_answer_404(client, sf):
    log_in(client, sf["admin"])
    base = f"/setup/connections/{sf['connection'].id}/walkthrough/files"
    for name in ("nope.xml", "..%2Fsalesforce.py", "PhoneSystemSSO.eca-meta.XML"):
        assert client.get(f"{base}/{name}").status_code == 404, name
    # The file belongs to Salesforce's walkthrough, not to an Okta connection of the same account.
    assert client.get(f"/setup/connections/{sf['okta'].id}/walkthrough/files/{SF_FILES[0]}").status_code == 404


def test_other_providers_have_no_path_choice(client, sf):
    log_in(client, sf["admin"])
    page = _walkthrough(client, sf["okta"], CONNECTED_APP)
    assert not page.xpath('//*[@data-testid="path-choice"]')
    assert len(_step_titles(page)) == len(get_plugin("okta").setup_steps)


def _choose(client, connection, path: str):
    url = f"/setup/connections/{connection.id}/walkthrough"
    return client.post(f"{url}/path", data={"path": path, "csrf_token": csrf_from(client, url)})


def test_the_choice_is_kept_so_the_wizard_returns_to_it_and_can_be_changed(client, sf):
    log_in(client, sf["admin"])
    connection = sf["connection"]
    response = _choose(client, connection, EXTERNAL_CLIENT_APP)
    assert response.status_code == 303
    assert response.location == f"/setup/connections/{connection.id}/walkthrough#path-choice"
    db.session.expire_all()
    assert db.session.get(type(connection), connection.id).setup_path == EXTERNAL_CLIENT_APP

    # The wizard's own links carry no ?path=: they come back to the chosen path.
    wizard = lxml.html.fromstring(client.get(f"/setup/connections/{connection.id}/").get_data(as_text=True))
    link = f"/setup/connections/{connection.id}/walkthrough"
    assert wizard.xpath(f'//a[@href="{link}"]')
    page = lxml.html.fromstring(client.get(link).get_data(as_text=True))
    assert "Write the external client app metadata" in _step_titles(page)
    [chosen] = page.xpath('//*[@aria-current="true"]')
    assert chosen.get("data-testid") == f"path-{EXTERNAL_CLIENT_APP}"
    assert "change your choice" in page.xpath('//*[@data-testid="path-choice"]')[0].text_content()

    _choose(client, connection, CONNECTED_APP)  # changed
    assert "Configure the connected app" in _step_titles(_walkthrough(client, connection))
    # An address with ?path= still shows that path, without changing the kept choice.
    assert "Deploy the external client app" in _step_titles(_walkthrough(client, connection, EXTERNAL_CLIENT_APP))
    assert "Configure the connected app" in _step_titles(_walkthrough(client, connection))


@pytest.mark.parametrize("path", ["<script>", "", "x" * 41])
def test_an_unknown_choice_is_refused_with_its_code(client, sf, path):
    log_in(client, sf["admin"])
    connection = sf["connection"]
    response = _choose(client, connection, path)
    assert response.status_code == 303
    shown = client.get(response.location).get_data(as_text=True)
    assert "SETUP_PATH_UNKNOWN" in shown and "&lt;script&gt;" not in shown and "<script>" not in shown
    db.session.expire_all()
    assert db.session.get(type(connection), connection.id).setup_path is None
    # A provider without paths has nothing to choose either.
    assert _choose(client, sf["okta"], CONNECTED_APP).status_code == 303
    assert db.session.get(type(sf["okta"]), sf["okta"].id).setup_path is None


def test_staff_get_links_and_may_not_choose(client, sf):
    log_in(client, sf["staff"])
    connection = sf["connection"]
    page = _walkthrough(client, connection)
    assert not page.xpath('//*[@data-testid="path-choice"]//form')
    links = page.xpath('//*[@data-testid="path-choice"]//a')
    assert [link.get("href") for link in links] == [
        f"/setup/connections/{connection.id}/walkthrough?path={CONNECTED_APP}#path-choice",
        f"/setup/connections/{connection.id}/walkthrough?path={EXTERNAL_CLIENT_APP}#path-choice",
    ]
    response = _choose(client, connection, CONNECTED_APP)
    assert response.status_code == 403 and "STAFF_READ_ONLY" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(type(connection), connection.id).setup_path is None


NS = {"md": "http://soap.sforce.com/2006/04/metadata"}


def _contact_email(client, connection) -> tuple[str, str]:
    """The contact email of the download, and the copyable block's text of the same file."""
    response = client.get(f"/setup/connections/{connection.id}/walkthrough/files/{SF_FILES[0]}")
    assert response.status_code == 200
    page = _walkthrough(client, connection, EXTERNAL_CLIENT_APP)
    [block] = page.xpath('//textarea[contains(., "<contactEmail>")]')
    assert block.text_content() == response.get_data(as_text=True)
    return lxml.etree.fromstring(response.data).findtext("md:contactEmail", namespaces=NS), block.text_content()


def test_the_contact_email_is_the_signed_in_admins_escaped_as_xml(client, sf, make_user):
    log_in(client, sf["admin"])
    email, text = _contact_email(client, sf["connection"])
    assert email == "admin@acme.example" and "(your admin email address)" not in text

    odd = make_user(sf["connection"].account, "r&d@acme.example", "admin")
    log_in(client, odd)
    email, text = _contact_email(client, sf["connection"])
    assert email == "r&d@acme.example"  # well-formed: lxml parsed it back
    assert "<contactEmail>r&amp;d@acme.example</contactEmail>" in text


def test_staff_see_a_placeholder_not_their_own_address(client, sf):
    log_in(client, sf["staff"])
    email, _text = _contact_email(client, sf["connection"])
    assert email == "(your admin email address)"
