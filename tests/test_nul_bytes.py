"""PostgreSQL cannot store or compare NUL in text: input carrying one is refused or answered like
any other unusable value, never with a 500 (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from app.extensions import db
from app.services.scim_tokens import create_token
from tests.helpers.audit import audit_events
from tests.helpers.web import another_browser, csrf_from, log_in

NUL_EMAIL = "a\x00b@acme.example"


def test_password_form_and_sso_start_with_a_nul_email(client, acme):
    csrf = csrf_from(client)
    response = client.post("/login/password", data={"email": NUL_EMAIL, "password": "x", "csrf_token": csrf})
    assert response.status_code in (302, 400, 401, 429)  # 302: back to the form, which says why
    response = client.post("/sso/start", data={"email": NUL_EMAIL, "csrf_token": csrf})
    assert 400 <= response.status_code < 500


def test_scim_filter_and_body_with_a_nul(client, acme):
    token = create_token(acme["account"], name="nul", actor="test").token
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    response = client.get(
        "/scim/v2/Users", query_string={"filter": 'userName eq "a\x00b@acme.example"'}, headers=headers
    )
    assert 200 <= response.status_code < 500
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": NUL_EMAIL, "active": True}
    response = client.post("/scim/v2/Users", json=body, headers=headers)
    assert 400 <= response.status_code < 500


def test_a_nul_in_any_query_field_is_refused_with_its_code(app, make_account, make_user):
    """A support filter handed a NUL answered 500 on PostgreSQL: one check now refuses a NUL in
    any query field of any route, with its code and an audit event, before a view reads it."""
    staff = make_user(make_account("phoneco", "Phone Co"), "helpdesk@phoneco.example", "support")
    browser = another_browser(app)
    log_in(browser, staff)
    for path in ("/support/sessions?account=a%00b", "/support/sessions?email=%00", "/support/audit?email=x%00"):
        response = browser.get(path)
        assert response.status_code == 400, path
        assert 'data-testid="error-code">REQUEST_NUL_CHARACTER<' in response.get_data(as_text=True), path
    assert len(audit_events("request.refused")) == 3
    page = browser.get("/support/sessions?email=helpdesk")
    assert page.status_code == 200
