"""Single Logout both ways, through real signed LogoutRequests and LogoutResponses."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
from lxml import etree

from app.demo_idp.idp import verify_redirect_signature
from app.extensions import db
from app.models import PendingRequest, UserSession
from app.saml import sp_metadata_xml, sp_values
from app.saml.schema_cache import validate_xml
from app.sessions import create_session
from tests.helpers.audit import audit_events
from tests.helpers.signin import sso_sign_in
from tests.helpers.web import PORTAL_COOKIE, another_browser, csrf_from
from tests.saml_idp import TestIdP, message_from_location

IDP_SLO_URL = "https://idp.example.test/saml/slo"
NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
}
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
PARTIAL = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"


@pytest.fixture
def slo(acme) -> dict:
    """Acme's connection with Single Logout on and the IdP's SLO URL known."""
    connection = acme["connection"]
    connection.settings = {"single_logout": True}
    connection.idp_slo_url = IDP_SLO_URL
    db.session.commit()
    return acme | {"sp": sp_values(connection).as_dict()}


def _sessions(user, connection, apps=("desktop", "mobile"), *, name_id=None, session_index="idx-app") -> list[int]:
    """App sessions created through ``connection`` for ``user`` (as the app sign-in does)."""
    ids = []
    for app_name in apps:
        new = create_session(
            user,
            app_name=app_name,
            ip="203.0.113.9",
            user_agent="app",
            connection_id=connection.id,
            name_id=name_id or user.email,
            session_index=session_index,
        )
        db.session.flush()
        ids.append(new.session.id)
    db.session.commit()
    return ids


def _live(session_ids) -> list[bool]:
    db.session.expire_all()
    return [db.session.get(UserSession, sid).revoked_at is None for sid in session_ids]


def _web_session_id(user) -> int:
    return db.session.query(UserSession).filter_by(user_id=user.id, app="portal").one().id


def _answer(location: str) -> tuple[etree._Element, dict[str, list[str]]]:
    assert location.startswith(IDP_SLO_URL + "?")
    return message_from_location(location, "SAMLResponse"), parse_qs(urlsplit(location).query)


# --- IdP-initiated -----------------------------------------------------------------------------


@pytest.mark.parametrize("binding", ["redirect", "post"])
def test_idp_logout_request_ends_that_persons_sessions_from_that_connection(client, slo, idp, make_connection, binding):
    person, other, connection = slo["admin"], slo["agent"], slo["connection"]
    sso_sign_in(client, idp, connection, person.email)
    web = _web_session_id(person)
    apps = _sessions(person, connection)
    others = _sessions(other, connection, ("desktop",))  # someone else
    password = create_session(person, app_name="portal", ip=None, user_agent=None)  # not through SSO
    db.session.commit()

    message = idp.logout_message(slo["sp"], name_id=person.email, binding=binding, relay_state="state-42")
    response = message.send(client, connection)

    assert response.status_code == 302, response.get_data(as_text=True)
    assert _live([web, *apps]) == [False, False, False]
    assert _live([*others, password.session.id]) == [True, True]
    assert client.get("/api/v1/me").status_code == 401  # the portal tab is signed out
    answer, query = _answer(response.location)
    assert answer.get("InResponseTo") == message.spec.message_id
    assert answer.get("Destination") == IDP_SLO_URL
    assert answer.find("samlp:Status/samlp:StatusCode", NS).get("Value") == SUCCESS
    assert answer.find("samlp:Status/samlp:StatusCode/samlp:StatusCode", NS) is None
    assert query["RelayState"] == ["state-42"]
    assert verify_redirect_signature(urlsplit(response.location).query, "SAMLResponse", connection.sp_certificate)
    [event] = audit_events("signout.idp_request", connection)
    assert event.details["revoked"] == 3 and event.subject_email == person.email


def test_named_session_indexes_end_only_those_sessions(client, slo, idp):
    agent, connection = slo["admin"], slo["connection"]
    first = _sessions(agent, connection, ("desktop",), session_index="idx-1")
    second = _sessions(agent, connection, ("mobile",), session_index="idx-2")
    message = idp.logout_message(slo["sp"], name_id=agent.email, session_indexes=("idx-2",))
    assert message.send(client, connection).status_code == 302
    assert _live([*first, *second]) == [True, False]


def test_nothing_matched_answers_partial_logout(client, slo, idp):
    response = idp.logout_message(slo["sp"], name_id="nobody@acme.example").send(client, slo["connection"])
    answer, _ = _answer(response.location)
    assert answer.find("samlp:Status/samlp:StatusCode/samlp:StatusCode", NS).get("Value") == PARTIAL


def test_without_an_idp_slo_url_the_person_lands_on_the_sign_in_page(client, slo, idp):
    slo["connection"].idp_slo_url = None
    db.session.commit()
    apps = _sessions(slo["admin"], slo["connection"])
    response = idp.logout_message(slo["sp"], name_id=slo["admin"].email).send(client, slo["connection"])
    assert response.status_code == 302 and response.location.endswith("/login")
    assert _live(apps) == [False, False]


def _refused(response, code: str, connection, session_ids) -> None:
    assert 400 <= response.status_code < 500, response.status_code
    assert code in response.get_data(as_text=True)
    assert _live(session_ids) == [True] * len(session_ids)
    assert [event.error_code for event in audit_events("signout.slo")][-1] == code
    assert audit_events("signout.idp_request", connection) == []


STALE = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)


@pytest.mark.parametrize("binding", ["redirect", "post"])
@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"sign": False}, "SLO_UNSIGNED"),
        ({"forged": True}, "SLO_SIGNATURE_INVALID"),
        ({"now": STALE, "lifetime": dt.timedelta(hours=1)}, "SLO_EXPIRED"),
        ({"now": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)}, "SLO_EXPIRED"),
        ({"lifetime": dt.timedelta(minutes=-5)}, "SLO_EXPIRED"),
        ({"destination": "https://sso.test/saml/999/sls"}, "SLO_DESTINATION_MISMATCH"),
        ({"destination": None}, "SLO_DESTINATION_MISMATCH"),
        ({"issuer": "https://evil.example/idp"}, "SLO_ISSUER_MISMATCH"),
    ],
)
def test_bad_logout_requests_are_refused_and_end_nothing(client, slo, idp, binding, kwargs, code):
    connection = slo["connection"]
    apps = _sessions(slo["admin"], connection)
    if kwargs.pop("forged", False):
        kwargs["signer"] = TestIdP.create()
    message = idp.logout_message(slo["sp"], name_id=slo["admin"].email, binding=binding, **kwargs)
    _refused(message.send(client, connection), code, connection, apps)


@pytest.mark.parametrize("binding", ["redirect", "post"])
def test_a_replayed_logout_request_is_refused(client, slo, idp, binding):
    connection = slo["connection"]
    message = idp.logout_message(slo["sp"], name_id=slo["admin"].email, binding=binding)
    assert message.send(client, connection).status_code == 302
    apps = _sessions(slo["admin"], connection)  # signed in again since
    response = message.send(another_browser(client.application), connection)
    assert response.status_code == 400 and "SLO_REPLAY" in response.get_data(as_text=True)
    assert _live(apps) == [True, True]
    assert len(audit_events("signout.idp_request", connection)) == 1


def test_another_connections_request_is_refused(client, slo, idp, make_account, make_connection, make_user):
    """The IdP of Beta (its own key and entity ID) cannot end Acme's sessions, nor replay its own
    LogoutRequest at Acme's SLS."""
    beta_idp = TestIdP.create("https://beta-idp.example.test/metadata")
    beta = make_connection(make_account("beta", "Beta"), test_idp=beta_idp, single_logout=True)
    apps = _sessions(slo["admin"], slo["connection"])
    message = beta_idp.logout_message(sp_values(beta).as_dict(), name_id=slo["admin"].email)
    _refused(message.send(client, slo["connection"]), "SLO_ISSUER_MISMATCH", slo["connection"], apps)
    # Issuer and Destination set to Acme's, but signed with Beta's IdP key:
    forged = beta_idp.logout_message(slo["sp"], name_id=slo["admin"].email, issuer=idp.entity_id)
    _refused(forged.send(client, slo["connection"]), "SLO_SIGNATURE_INVALID", slo["connection"], apps)


def test_single_logout_off_refuses_every_message(client, acme, idp):
    apps = _sessions(acme["admin"], acme["connection"])
    message = idp.logout_message(acme["sp"], name_id=acme["admin"].email)
    _refused(message.send(client, acme["connection"]), "SLO_NOT_ENABLED", acme["connection"], apps)


def test_a_weak_signature_algorithm_is_refused(client, slo, idp):
    message = idp.logout_message(slo["sp"], name_id=slo["admin"].email)
    query = message.query_string.replace("rsa-sha256", "rsa-sha1")
    response = client.get(f"/saml/{slo['connection'].id}/sls?{query}")
    assert response.status_code == 400 and "SAML_WEAK_ALGORITHM" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("", "SLO_MALFORMED"),
        ("SAMLRequest=%%%", "SLO_MALFORMED"),
        ("SAMLRequest=bm90IGRlZmxhdGVk", "SLO_MALFORMED"),
        ("SAMLRequest=a&SAMLRequest=b", "SLO_MALFORMED"),
        ("SAMLRequest=a&SAMLResponse=b", "SLO_MALFORMED"),
    ],
)
def test_garbage_at_the_sls_is_a_clean_400(client, slo, query, code):
    response = client.get(f"/saml/{slo['connection'].id}/sls?{query}")
    assert response.status_code == 400 and code in response.get_data(as_text=True)


def test_a_deflate_bomb_and_a_doctype_are_refused(client, slo, idp):
    import base64
    import zlib
    from urllib.parse import quote_plus

    bomb = base64.b64encode(zlib.compress(b"<a>" + b" " * 5_000_000 + b"</a>")[2:-4]).decode()
    response = client.get(f"/saml/{slo['connection'].id}/sls?SAMLRequest={quote_plus(bomb)}")
    assert response.status_code == 413 and "SAML_TOO_LARGE" in response.get_data(as_text=True)
    doctype = base64.b64encode(b'<!DOCTYPE x [<!ENTITY a "b">]><x/>').decode()
    response = client.post(f"/saml/{slo['connection'].id}/sls", data={"SAMLRequest": doctype})
    assert response.status_code == 400 and "SAML_DOCTYPE" in response.get_data(as_text=True)


def test_unknown_connection_is_a_404(client):
    assert client.get("/saml/99999999/sls?SAMLRequest=x").status_code == 404


# --- SP-initiated ------------------------------------------------------------------------------


def _sign_out(client) -> object:
    return client.post("/logout", data={"csrf_token": csrf_from(client, "/portal/")})


def test_sign_out_ends_the_session_then_sends_a_signed_logout_request(client, slo, idp):
    agent, connection = slo["admin"], slo["connection"]
    sso_sign_in(client, idp, connection, agent.email)
    web = db.session.query(UserSession).filter_by(user_id=agent.id, app="portal").one()
    apps = _sessions(agent, connection)

    response = _sign_out(client)

    assert response.status_code == 302 and response.location.startswith(IDP_SLO_URL + "?")
    assert _live([web.id, *apps]) == [False, True, True]  # this session only, ended first
    request = message_from_location(response.location, "SAMLRequest")
    assert request.tag == f"{{{NS['samlp']}}}LogoutRequest"
    assert request.get("Destination") == IDP_SLO_URL
    assert request.find("saml:Issuer", NS).text == slo["sp"]["sp_entity_id"]
    assert request.find("saml:NameID", NS).text == agent.email
    assert request.find("samlp:SessionIndex", NS).text == web.saml_session_index
    assert verify_redirect_signature(urlsplit(response.location).query, "SAMLRequest", connection.sp_certificate)
    assert db.session.get(PendingRequest, request.get("ID")).purpose == "logout"

    answer = idp.logout_message(slo["sp"], in_response_to=request.get("ID"))
    done = answer.send(client, connection)
    assert done.status_code == 302 and done.location.endswith("/login")
    assert "signed out here and at" in client.get("/login").get_data(as_text=True)
    assert [event.outcome for event in audit_events("signout.idp_response", connection)] == ["success"]

    # The same answer again, or in another browser, is refused (the pending request is used up).
    again = answer.send(client, connection)
    assert again.status_code == 400 and "SLO_IN_RESPONSE_TO_MISMATCH" in again.get_data(as_text=True)


def _pending_logout_id(client, slo, idp) -> str:
    sso_sign_in(client, idp, slo["connection"], slo["admin"].email)
    return message_from_location(_sign_out(client).location, "SAMLRequest").get("ID")


def test_an_idp_failure_status_is_said_plainly(client, slo, idp):
    request_id = _pending_logout_id(client, slo, idp)
    answer = idp.logout_message(
        slo["sp"], in_response_to=request_id, status="urn:oasis:names:tc:SAML:2.0:status:Responder"
    )
    assert answer.send(client, slo["connection"]).status_code == 302
    assert "did not confirm" in client.get("/login").get_data(as_text=True)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("other_browser", "SLO_IN_RESPONSE_TO_MISMATCH"),
        ("unknown_id", "SLO_IN_RESPONSE_TO_MISMATCH"),
        ("unsigned", "SLO_UNSIGNED"),
        ("wrong_destination", "SLO_DESTINATION_MISMATCH"),
        ("stale", "SLO_EXPIRED"),
    ],
)
def test_bad_logout_responses_are_refused(client, slo, idp, case, code):
    request_id = _pending_logout_id(client, slo, idp)
    kwargs: dict = {"in_response_to": "ONELOGIN_unknown" if case == "unknown_id" else request_id}
    if case == "unsigned":
        kwargs["sign"] = False
    if case == "wrong_destination":
        kwargs["destination"] = "https://sso.test/elsewhere"
    if case == "stale":
        kwargs["now"] = STALE
    browser = another_browser(client.application) if case == "other_browser" else client
    response = idp.logout_message(slo["sp"], **kwargs).send(browser, slo["connection"])
    assert response.status_code == 400 and code in response.get_data(as_text=True)
    assert [event.error_code for event in audit_events("signout.slo")] == [code]


def test_an_authn_response_cannot_answer_a_logout_request(client, slo, idp):
    """A pending logout is not a pending sign-in: a signed assertion answering it is refused."""
    from tests.helpers.signin import post_acs

    request_id = _pending_logout_id(client, slo, idp)
    saml = idp.response(slo["sp"], email=slo["admin"].email, request_id=request_id)
    response = post_acs(client, slo["connection"], saml)
    assert response.status_code == 400 and "SAML_IN_RESPONSE_TO_MISMATCH" in response.get_data(as_text=True)


def test_without_single_logout_sign_out_stays_here(client, acme, idp):
    sso_sign_in(client, idp, acme["connection"], acme["admin"].email)
    response = _sign_out(client)
    assert response.status_code == 302 and response.location.endswith("/login")
    assert client.get_cookie(PORTAL_COOKIE) is None
    assert db.session.query(PendingRequest).filter_by(purpose="logout").count() == 0


def test_app_sign_out_ends_the_app_session_only(client, slo, idp):
    from tests.helpers.web import bearer

    new = create_session(
        slo["admin"],
        app_name="desktop",
        ip=None,
        user_agent=None,
        connection_id=slo["connection"].id,
        name_id=slo["admin"].email,
    )
    db.session.commit()
    response = client.post("/api/v1/logout", headers=bearer(new.token))
    assert response.status_code in (200, 204)
    assert db.session.query(PendingRequest).filter_by(purpose="logout").count() == 0


# --- metadata ----------------------------------------------------------------------------------


def test_metadata_lists_both_slo_bindings_and_validates_against_the_schema(slo):
    xml = sp_metadata_xml(slo["connection"])
    root = etree.fromstring(xml.encode())
    services = root.findall("md:SPSSODescriptor/md:SingleLogoutService", NS)
    assert {service.get("Binding").rsplit(":", 1)[-1] for service in services} == {"HTTP-Redirect", "HTTP-POST"}
    assert {service.get("Location") for service in services} == {slo["sp"]["sls_url"]}
    assert not isinstance(validate_xml(xml, "saml-schema-metadata-2.0.xsd"), str)


def test_metadata_without_single_logout_lists_no_slo_service(acme):
    root = etree.fromstring(sp_metadata_xml(acme["connection"]).encode())
    assert root.findall("md:SPSSODescriptor/md:SingleLogoutService", NS) == []
