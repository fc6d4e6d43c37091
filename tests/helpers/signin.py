"""The SP-initiated SAML sign-in, step by step, through the signing test IdP."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.models import IdpConnection
from app.saml.urls import sp_values
from tests.helpers.web import csrf_from
from tests.saml_idp import TestIdP, authn_request_from_location


def post_sso_start(client: FlaskClient, email: str, next_path: str | None = None, **form: str) -> TestResponse:
    """Submit the sign-in page's SSO form (with its CSRF token), as a browser would."""
    data = {"email": email, "csrf_token": csrf_from(client, "/login"), **form}
    if next_path:
        data["next"] = next_path
    return client.post("/sso/start", data=data)


def start_sso(client: FlaskClient, email: str, next_path: str | None = None) -> str:
    """Start SSO for ``email`` from the sign-in page; return the AuthnRequest ID the IdP received."""
    response = post_sso_start(client, email, next_path)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert "SAMLRequest=" in response.location, response.location
    return authn_request_from_location(response.location).get("ID")


def post_acs(
    client: FlaskClient, connection: IdpConnection, saml_response: str, *, finish: bool = True, **form: str
) -> TestResponse:
    """POST a SAMLResponse to the connection's ACS, as the IdP's auto-submitting form does.

    A web sign-in the ACS accepted answers 303 to the same-site finishing URL; with ``finish``
    the browser follows it, as a real one does, and that request's answer is returned.
    """
    response = client.post(f"/saml/{connection.id}/acs", data={"SAMLResponse": saml_response, **form})
    if finish and response.status_code == 303 and urlsplit(response.location).path == "/sso/finish":
        return client.get(response.location)
    return response


def sso_response(
    client: FlaskClient, idp: TestIdP, connection: IdpConnection, email: str, **response_kwargs: object
) -> TestResponse:
    """Run the whole SP-initiated flow for ``email``; return the ACS response, whatever it is."""
    request_id = start_sso(client, email)
    saml = idp.response(sp_values(connection).as_dict(), email=email, request_id=request_id, **response_kwargs)
    return post_acs(client, connection, saml)


def sso_sign_in(client: FlaskClient, idp: TestIdP, connection: IdpConnection, email: str) -> None:
    """The whole SP-initiated SAML sign-in for ``email`` in ``client``; it must succeed."""
    response = sso_response(client, idp, connection, email)
    assert response.status_code == 302, response.get_data(as_text=True)


def start_test_sign_in(client: FlaskClient, connection: IdpConnection, csrf: str) -> str:
    """Press "Sign in at <IdP> now" on the setup page; return the AuthnRequest ID the IdP receives."""
    response = client.post(f"/setup/connections/{connection.id}/test", data={"csrf_token": csrf})
    assert response.status_code == 302, response.get_data(as_text=True)
    return authn_request_from_location(response.location).get("ID")
