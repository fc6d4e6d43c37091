"""Issue 9, item 4: an app's bearer token is for the API only. Under ``/api/`` it authenticates; on
every page it counts for nothing (the page answers as to a browser without a session)."""

from __future__ import annotations

import pytest

from tests.helpers.web import app_session, bearer, log_in

PAGES = ["/portal/", "/admin/users", "/setup/", "/me/sessions", "/support/", "/support/sessions"]


@pytest.fixture
def lead(acme, make_user):
    """A person whose roles open every page (admin of acme and staff) and whose app holds a token."""
    return make_user(acme["account"], "lead@acme.example", "admin,support")


@pytest.mark.parametrize("path", PAGES)
def test_a_bearer_token_opens_no_page(client, lead, path):
    token = app_session(lead, "desktop").token
    response = client.get(path, headers=bearer(token))
    assert response.status_code == 302 and response.location.startswith("/login?next="), response.status_code
    # Without the header, nothing either: the same answer as for no session at all.
    assert client.get(path).location == response.location


@pytest.mark.parametrize("path", [path for path in PAGES if path != "/support/"])  # (a redirect)
def test_pages_use_the_cookie_session_whatever_the_header_says(client, lead, acme, path):
    """A page with a portal cookie is served to the cookie's person; a bearer header beside it is
    ignored (it cannot swap in another person, nor lock the cookie's owner out)."""
    log_in(client, lead)
    other = app_session(acme["admin"], "mobile").token
    response = client.get(path, headers=bearer(other))
    assert response.status_code == 200, response.status_code
    assert "lead@acme.example" in response.get_data(as_text=True)


def test_the_api_still_takes_bearer_tokens(client, lead):
    token = app_session(lead, "desktop").token
    response = client.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 200 and response.json["app"] == "desktop"
    assert client.get("/api/v1/me", headers=bearer("x" * 43)).status_code == 401
