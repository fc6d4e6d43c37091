"""What an admin reads after a test sign-in, in diagnostics and in import errors: every error code
has an admin text written about the person (names, not ids) with the fix as the main button; a
signature failure sets the certificate that signed beside the trusted ones; import errors are our
own plain sentences (library text goes to the audit event only); a sign-in that came back on
another host says which address to use. Real signed SAML from the test IdP, real database."""

from __future__ import annotations

import base64
import html
import re
import string
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from lxml import etree

from app.demo_idp.idp import signed_response
from app.errors import _CODES, ADMIN_PLACEHOLDERS, ERROR_CODES, AdminContext, admin_text
from app.extensions import db
from app.models import IdpConnection
from app.models.idp_connection import DRAFT, ENABLED, TESTED
from app.saml.certs import certificate_info, generate_key_pair
from app.saml.urls import sp_values
from app.services.connections import enable_connection
from tests.conftest import BASE_URL
from tests.helpers.audit import audit_events
from tests.helpers.metadata import idp_metadata, make_cert
from tests.helpers.signin import post_acs, sso_response, start_test_sign_in
from tests.helpers.web import FreshRequestClient, log_in
from tests.saml_idp import TestIdP, authn_request_from_location

# --- every code has both texts --------------------------------------------------------------


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


FULL = AdminContext(
    person="Dave",
    email="dave@example.com",
    idp="Okta",
    connection="Okta production",
    account="Demo Company",
    app="the Account Portal",
    roles="agent only",
    email_attribute="email",
)


@pytest.mark.parametrize("entry", _CODES, ids=[f"{i}-{entry.code}" for i, entry in enumerate(_CODES)])
def test_every_error_code_has_an_admin_text(entry):
    # Two texts, for two readers: the person's has no placeholders, the admin's only known ones.
    assert entry.message and entry.admin and entry.admin != entry.message
    assert not _placeholders(entry.message)
    assert _placeholders(entry.admin) <= ADMIN_PLACEHOLDERS, _placeholders(entry.admin) - ADMIN_PLACEHOLDERS
    for context in (FULL, AdminContext()):
        text = admin_text(entry.code, context)
        assert "{" not in text and "}" not in text
        # Every sentence starts with a capital letter, filled in or not.
        for sentence in re.split(r"(?<=\.) ", text):
            assert sentence[:1].isupper() or sentence[:1].isdigit(), (entry.code, sentence)
        # Written about the person and the connection by name, never by id.
        assert not re.search(r"\b(account|connection|user) \d", text)


def test_the_dict_holds_every_code_and_every_entry_has_an_admin_text():
    assert {entry.code for entry in _CODES} == set(ERROR_CODES)
    assert all(ERROR_CODES[code].admin for code in ERROR_CODES)


def test_real_values_keep_their_case_and_braces_stay_literal():
    context = AdminContext(person="{email}", email="dave@Example.com", idp="okta dev")
    text = admin_text("USER_NOT_FOUND", context)
    assert text.startswith("{email} signed in at okta dev, but no user with dave@Example.com exists")


def test_the_issues_example_sentence():
    assert admin_text("USER_NOT_FOUND", FULL) == (
        "Dave signed in at Okta, but no user with dave@example.com exists in Demo Company. "
        "Add the user, or check that Okta sends the address you use here."
    )


# --- the test result page ---------------------------------------------------------------------


@pytest.fixture
def demo(make_account, make_user, make_connection, client) -> dict:
    """Demo Company with an admin signed in and a draft Okta connection with its IdP side."""
    account = make_account("demo", "Demo Company")
    admin = make_user(account, "admin@demo.example", "admin", password="a long enough password")
    agent = make_user(account, "agent@demo.example", "agent")
    connection = make_connection(account, "okta", status=DRAFT)
    log_in(client, admin)
    return {
        "account": account,
        "admin": admin,
        "agent": agent,
        "connection": connection,
        "sp": sp_values(connection).as_dict(),
    }


def _test_result(client, csrf_token, demo, idp, **response):
    connection = demo["connection"]
    request_id = start_test_sign_in(client, connection, csrf_token())
    response.setdefault("sign_response", True)
    saml = idp.response(demo["sp"], request_id=request_id, **response)
    redirect = post_acs(client, connection, saml)
    assert redirect.status_code == 302 and "/tests/" in redirect.location, redirect.get_data(as_text=True)
    page = client.get(redirect.location)
    assert page.status_code == 200
    return html.unescape(page.get_data(as_text=True))


def _buttons(page: str) -> list[str]:
    """The result page's action row, in order: each control's test id and whether it is secondary."""
    row = page[page.index('data-testid="result-actions"') :]
    row = row[: row.index("</div>")]
    return [
        f"{testid}{' (secondary)' if 'secondary' in tag else ''}"
        for tag, testid in re.findall(r'(<(?:a|button)[^>]*data-testid="([a-z-]+)"[^>]*>)', row)
    ]


def _no_ids(page: str, connection: IdpConnection) -> None:
    text = re.sub(r"<[^>]+>", " ", page)  # what a person reads, not URLs in attributes
    assert "in account" not in text and f"account {connection.account_id}" not in text
    assert f"connection {connection.id}" not in text.lower()


def test_unknown_person_is_described_by_name_and_adding_them_is_the_main_button(client, csrf_token, demo, idp):
    page = _test_result(
        client,
        csrf_token,
        demo,
        idp,
        email="dave@example.com",
        attributes={"email": ["dave@example.com"], "firstName": ["Dave"], "lastName": ["Example"]},
    )
    assert 'data-outcome="user-refused"' in page
    assert (
        "Dave signed in at Okta, but no user with dave@example.com exists in Demo Company. "
        "Add the user, or check that Okta sends the address you use here."
    ) in page
    # The person's own text (addressed to them) is not what the admin reads.
    assert "Ask your company's administrator to add you" not in page
    _no_ids(page, demo["connection"])
    # The fix leads; Enable is there, but second, with the reason it may still be used.
    assert _buttons(page)[:2] == ["fix-action", "enable (secondary)"]
    assert "Enable anyway" in page and "this person would still be refused" in page
    link = re.search(
        r'<a href="([^"]+)" role="button" data-testid="fix-action">Add dave@example.com as a user</a>', page
    )
    assert link, page[page.index('data-testid="result-actions"') :][:800]
    url = urlsplit(link.group(1))
    assert url.path == "/admin/users/new"
    assert parse_qs(url.query) == {"email": ["dave@example.com"], "name": ["Dave Example"]}
    form = client.get(link.group(1)).get_data(as_text=True)
    assert 'value="dave@example.com"' in form and 'value="Dave Example"' in form
    assert _fresh(demo["connection"]).status == TESTED


def test_once_the_user_exists_the_result_offers_to_test_again(client, csrf_token, demo, idp, make_user):
    connection = demo["connection"]
    request_id = start_test_sign_in(client, connection, csrf_token())
    saml = idp.response(demo["sp"], request_id=request_id, email="dave@example.com", sign_response=True)
    result_url = post_acs(client, connection, saml).location
    make_user(demo["account"], "dave@example.com", "admin")
    page = html.unescape(client.get(result_url).get_data(as_text=True))
    assert "Test again: dave@example.com is a user now" in page


def test_person_without_the_role_links_to_their_user_page(client, csrf_token, demo, idp):
    page = _test_result(client, csrf_token, demo, idp, email="agent@demo.example")
    assert (
        "agent@demo.example signed in at Okta as agent@demo.example, but their roles in Demo Company (agent only) "
        "do not open the Account Portal. Give them a role that includes it."
    ) in page
    assert (
        f'href="/admin/users/{demo["agent"].id}" role="button" data-testid="fix-action">Change agent@demo.example\'s roles<'
        in page
    )
    assert _buttons(page)[:2] == ["fix-action", "enable (secondary)"]


def test_refused_person_and_sso_required_hide_enable_with_the_reason(client, csrf_token, demo, idp):
    demo["account"].sso_required = True
    db.session.commit()
    page = _test_result(client, csrf_token, demo, idp, email="dave@example.com")
    assert "enable" not in _buttons(page)
    assert (
        "Demo Company requires SSO, so a new connection is enabled only after a test in which the person got in" in page
    )


def test_a_passing_test_makes_enable_the_main_button_and_names_what_it_replaces(
    client, csrf_token, demo, idp, make_connection
):
    old = make_connection(demo["account"], "google", status=DRAFT)
    old.status = TESTED
    db.session.commit()
    enable_connection(old)  # enabled through the service: the audit trail knows since when
    db.session.commit()
    page = _test_result(client, csrf_token, demo, idp, email="admin@demo.example")
    assert 'data-outcome="success"' in page
    assert "admin@demo.example signed in at Okta as admin@demo.example, and would get into the Account Portal." in page
    assert _buttons(page)[0] == "enable"
    since = audit_events("connection.enable", old)[-1].created_at
    label = f"Google Workspace (enabled since {since.day} {since:%b})"
    assert f"Enabling replaces {label}." in page

    response = client.post(f"/setup/connections/{demo['connection'].id}/enable", data={"csrf_token": csrf_token()})
    flashed = html.unescape(client.get(response.location).get_data(as_text=True))
    assert f"It replaces {label}." in flashed
    assert f"connection {old.id}" not in flashed and _fresh(old).status != ENABLED


def test_signature_by_an_untrusted_certificate_shows_both_fingerprints(client, csrf_token, demo, idp):
    stranger = TestIdP.create()  # same entity ID, another key and certificate
    page = _test_result(client, csrf_token, demo, stranger, email="admin@demo.example")
    assert 'data-testid="test-error-code">SAML_SIGNATURE_INVALID<' in page
    assert "Okta's answer was not signed by a certificate that Okta trusts" in page
    claimed = re.findall(r'data-testid="signer-claimed">.*?class="mono">([0-9A-F:]+)<', page)
    trusted = re.findall(r'data-testid="signer-trusted">.*?class="mono">([0-9A-F:]+)<', page)
    assert claimed == [certificate_info(stranger.cert_pem).fingerprint_sha256]
    assert trusted == [certificate_info(idp.cert_pem).fingerprint_sha256]
    assert 'data-verdict="unknown"' in page
    assert "Import Okta's details again" in page  # the fix action
    assert 'data-testid="table' not in page and '<table class="stack" data-testid="signer-table">' in page


def test_a_trusted_certificate_named_by_a_forged_signature_is_not_believed(client, csrf_token, demo, idp):
    """The KeyInfo names our trusted certificate, the signature is another key's: refused, and said so."""
    connection = demo["connection"]
    request_id = start_test_sign_in(client, connection, csrf_token())
    forger_key, _ = generate_key_pair("Forger")
    spec = idp.spec(demo["sp"], email="admin@demo.example", request_id=request_id)
    element = signed_response(spec, forger_key, idp.cert_pem, sign_assertion=True, sign_response=True)
    saml = base64.b64encode(etree.tostring(element)).decode()
    page = html.unescape(client.get(post_acs(client, connection, saml).location).get_data(as_text=True))
    assert 'data-testid="test-error-code">SAML_SIGNATURE_INVALID<' in page
    assert (
        'data-verdict="trusted"' in page and "was changed after it was signed, or was signed with another key" in page
    )
    assert _fresh(connection).status == DRAFT


def test_connection_hub_puts_the_fix_before_enable_after_a_refused_test(client, csrf_token, demo, idp):
    connection = demo["connection"]
    _test_result(client, csrf_token, demo, idp, email="dave@example.com")
    page = html.unescape(client.get(f"/setup/connections/{connection.id}/").get_data(as_text=True))
    step = page[page.index('data-testid="next-step"') :][:3000]
    assert (
        "Last test: dave@example.com signed in at Okta, but no user with dave@example.com exists in Demo Company."
        in step
    )
    assert step.index('data-testid="fix-action"') < step.index('data-testid="enable"')
    assert re.search(r'<button type="submit" data-testid="enable" class="secondary">Enable anyway</button>', step)


def test_diagnostics_explain_each_refused_sign_in(client, csrf_token, demo, idp, sign_in):
    connection = demo["connection"]
    connection.status = ENABLED
    db.session.commit()
    sign_in(connection, "agent@demo.example", sign_response=True)  # refused: no portal role
    log_in(client, demo["admin"])  # the sign-in attempt ran in this browser
    page = html.unescape(client.get(f"/setup/connections/{connection.id}/").get_data(as_text=True))
    rows = page[page.index('data-testid="diagnostics"') :]
    assert '<table class="stack" data-testid="diagnostics">' in page
    assert "their roles in Demo Company (agent only) do not open the Account Portal" in rows
    assert f'href="/admin/users/{demo["agent"].id}" data-testid="attempt-action"' in rows
    assert '<td data-label="Outcome">' in rows
    _no_ids(page, connection)


def test_diagnostics_show_who_signed_a_refused_sign_in(client, demo, sign_in):
    connection = demo["connection"]
    connection.status = ENABLED
    db.session.commit()
    stranger = TestIdP.create()
    assert sso_response(client, stranger, connection, "admin@demo.example").status_code == 400
    log_in(client, demo["admin"])
    page = html.unescape(client.get(f"/setup/connections/{connection.id}/").get_data(as_text=True))
    signer = re.search(r'data-testid="attempt-signer">(.*?)</small>', page, re.S)
    assert signer, page[page.index('data-testid="diagnostics"') :][:2000]
    assert certificate_info(stranger.cert_pem).fingerprint_sha256 in signer.group(1)
    assert "which is not one of the certificates above" in signer.group(1)


def test_review_page_names_the_connection_and_account(client, csrf_token, demo, idp):
    connection = demo["connection"]
    connection.status = ENABLED
    db.session.commit()
    response = client.post(
        f"/setup/connections/{connection.id}/import/paste",
        data={"csrf_token": csrf_token(), "metadata_xml": idp_metadata(idp.cert_pem).decode()},
    )
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 200
    assert "Okta is enabled: the change applies to the next sign-in of Demo Company's users." in page
    _no_ids(page, connection)


def _fresh(connection: IdpConnection) -> IdpConnection:
    db.session.expire_all()
    return db.session.get(IdpConnection, connection.id)


# --- import errors: our sentences, never a library's -------------------------------------------

#: Text that must never reach the page: library class names, parser words, links, tracebacks.
LIBRARY_TEXT = (
    "InvalidData",
    "InvalidLength",
    "http",
    "Traceback",
    "lxml",
    "XMLSyntaxError",
    "cryptography",
    "ValueError",
    "line 1",
    "column",
)

TRUNCATED_CERT = "".join(line for line in make_cert(days=300).splitlines() if "-----" not in line)[
    :200
]  # cut short while copying
PRIVATE_KEY = generate_key_pair("idp")[0]
HTML_PAGE = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form></form></body></html>"


def _sp_metadata_only(connection: IdpConnection) -> bytes:
    from app.saml import sp_metadata_xml

    return sp_metadata_xml(connection).encode()


IMPORT_CASES = {
    "truncated base64 certificate": (
        "manual",
        {"certificate": TRUNCATED_CERT},
        "METADATA_BAD_CERTIFICATE",
        "The certificate is incomplete or damaged: part of it is missing or changed.",
    ),
    "a private key instead of the certificate": (
        "manual",
        {"certificate": PRIVATE_KEY},
        "METADATA_BAD_CERTIFICATE",
        "This is a private key, not a certificate.",
    ),
    "an HTML page instead of XML": (
        "file",
        {"metadata_file": HTML_PAGE},
        "METADATA_NOT_SAML",
        "This is a web page (HTML), not SAML metadata.",
    ),
    "metadata with no IdP descriptor": (
        "paste",
        {"metadata_xml": None},  # our own SP metadata, filled in below
        "METADATA_NO_IDP",
        "This metadata describes an application (a service provider), not an identity provider",
    ),
    "an expired certificate": (
        "paste",
        {"metadata_xml": idp_metadata(make_cert(days=-3)).decode()},
        "METADATA_CERTIFICATE_EXPIRED",
        "The signing certificate ",
    ),
    "a file that is not XML": (
        "file",
        {"metadata_file": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR not metadata"},
        "METADATA_NOT_XML",
        "This is not an XML file.",
    ),
    "XML cut short": (
        "paste",
        {"metadata_xml": idp_metadata(make_cert(days=300)).decode()[:300]},
        "METADATA_NOT_XML",
        "This XML is incomplete or broken, perhaps cut short while copying.",
    ),
    "a damaged certificate inside metadata": (
        "paste",
        {
            "metadata_xml": idp_metadata(make_cert(days=300))
            .decode()
            .replace("<ds:X509Certificate>", "<ds:X509Certificate>AAAA", 1)
        },
        "METADATA_BAD_CERTIFICATE",
        "A signing certificate in this metadata is damaged or incomplete.",
    ),
}


@pytest.mark.parametrize("case", list(IMPORT_CASES))
def test_import_errors_are_our_sentences_and_library_text_goes_to_the_audit_only(client, csrf_token, demo, case):
    import io

    connection = demo["connection"]
    method, fields, code, sentence = IMPORT_CASES[case]
    data: dict = {"csrf_token": csrf_token()}
    if method == "manual":
        data.update(entity_id="https://idp.example/entity", sso_url="https://idp.example/sso", **fields)
    elif method == "file":
        data["metadata_file"] = (io.BytesIO(fields["metadata_file"]), "metadata.xml")
    else:
        data["metadata_xml"] = fields["metadata_xml"] or _sp_metadata_only(connection).decode()
    response = client.post(
        f"/setup/connections/{connection.id}/import/{method}",
        data=data,
        content_type="multipart/form-data" if method == "file" else None,
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'data-testid="import-error-code">{code}<' in page
    error = re.search(
        r'<article class="flash flash-error" role="alert" data-testid="import-error">(.*?)</article>', page, re.S
    )
    assert error
    said = html.unescape(re.sub(r"<[^>]+>", "", error.group(1)))
    assert sentence in said
    for library_word in LIBRARY_TEXT:
        assert library_word not in said, (library_word, said)
    assert "Traceback" not in page and "XMLSyntaxError" not in page and "InvalidData" not in page
    [event] = audit_events("connection.import", connection)
    assert event.outcome == "failure" and event.error_code == code
    assert sentence in event.details["reason"]


def test_the_library_detail_is_kept_in_the_audit_event(client, csrf_token, demo):
    connection = demo["connection"]
    client.post(
        f"/setup/connections/{connection.id}/import/manual",
        data={
            "csrf_token": csrf_token(),
            "entity_id": "https://idp.example/entity",
            "sso_url": "https://idp.example/sso",
            "certificate": TRUNCATED_CERT,
        },
    )
    [event] = audit_events("connection.import", connection)
    assert event.details["detail"].startswith("ValueError")  # cryptography's own words, for support


# --- a sign-in that came back on another host ---------------------------------------------------


class _PortalHostClient(FreshRequestClient):
    """A browser whose requests go to https://sso.test (BASE_URL's host) unless told otherwise:
    the test client's own default host is ``localhost``."""

    def open(self, *args, **kwargs):
        kwargs.setdefault("base_url", BASE_URL)
        return super().open(*args, **kwargs)


@pytest.fixture
def browser(app) -> FlaskClient:
    return _PortalHostClient(app, app.response_class, use_cookies=True)


def _start(browser: FlaskClient, email: str, **where: str) -> str:
    login = browser.get("/login", **where).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login).group(1)
    referer = {"Referer": f"{where.get('base_url', BASE_URL)}/login"}  # https: the CSRF check wants one
    started = browser.post("/sso/start", data={"email": email, "csrf_token": csrf}, headers=referer, **where)
    assert started.status_code == 302, started.get_data(as_text=True)
    return authn_request_from_location(started.location).get("ID")


def _hint(page: str) -> str:
    return re.sub(r"<[^>]+>", "", page[page.index('data-testid="address-hint"') :][:700])


def test_acs_posted_to_another_host_says_which_address_to_use(browser, acme, idp):
    """Started at https://sso.test (BASE_URL); the IdP posted the answer to 127.0.0.1: the
    binding cookie stayed with sso.test, so the finishing request on 127.0.0.1 cannot match it."""
    connection = acme["connection"]
    saml = idp.response(acme["sp"], email="admin@acme.example", request_id=_start(browser, "admin@acme.example"))
    other = {"base_url": "https://127.0.0.1:5000"}
    acs = browser.post(f"/saml/{connection.id}/acs", data={"SAMLResponse": saml}, **other)
    assert acs.status_code == 303
    finish = browser.get(acs.location, **other)
    assert finish.status_code == 400
    page = html.unescape(finish.get_data(as_text=True))
    assert 'data-testid="error-code">SAML_IN_RESPONSE_TO_MISMATCH<' in page
    assert "This page was opened at https://127.0.0.1:5000, but this portal's address is https://sso.test" in _hint(
        page
    )
    assert '<a href="https://sso.test/login" data-testid="address-hint-link">Sign in at https://sso.test</a>' in page


def test_sign_in_started_at_another_address_names_the_right_one(browser, acme, idp):
    """Started on an alias host; the IdP posted to BASE_URL's ACS as configured: no binding
    cookie there, and the page says where to start instead."""
    request_id = _start(browser, "admin@acme.example", base_url="https://portal-alias.test")
    saml = idp.response(acme["sp"], email="admin@acme.example", request_id=request_id)
    finish = post_acs(browser, acme["connection"], saml)
    assert finish.status_code == 400
    page = html.unescape(finish.get_data(as_text=True))
    assert "SAML_IN_RESPONSE_TO_MISMATCH" in page
    assert "If you opened this portal at another address than https://sso.test, the sign-in could not finish" in _hint(
        page
    )
    assert 'href="https://sso.test/login"' in page


def test_the_same_sign_in_on_the_right_host_works_and_other_refusals_have_no_hint(browser, acme, idp, make_user):
    request_id = _start(browser, "admin@acme.example")
    saml = idp.response(acme["sp"], email="admin@acme.example", request_id=request_id)
    assert post_acs(browser, acme["connection"], saml).location == "/portal/"
    make_user(acme["account"], "gone@acme.example", "agent")
    request_id = _start(browser, "gone@acme.example")
    saml = idp.response(acme["sp"], email="gone@acme.example", request_id=request_id)
    page = post_acs(browser, acme["connection"], saml).get_data(as_text=True)
    assert "NO_ROLE_FOR_APP" in page and 'data-testid="address-hint"' not in page
