"""Each check the SAML core adds on top of python3-saml, with a response that only that check stops.

Every response here is really signed (tests/saml_idp.py); nothing in the validator is mocked.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading

import pytest
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from app.demo_idp.idp import DS, SAML, encode, sign_element
from app.errors import SignInError
from app.extensions import db
from app.models import AuditEvent, PendingRequest, UsedAssertion, UserSession
from app.saml.certs import certificate_info
from app.saml.core import consume_response
from app.saml.urls import sp_values
from app.services.connections import add_certificates
from tests.helpers.signin import post_acs, start_sso
from tests.helpers.web import another_browser, csrf_from
from tests.saml_idp import TestIdP, minutes

EMAIL = "admin@acme.example"


def refused(response, code: str) -> None:
    """The ACS refused with ``code``: a 4xx page naming the code, and a failure audit event."""
    assert 400 <= response.status_code < 500, response.status_code
    assert code.encode() in response.data
    event = db.session.query(AuditEvent).filter_by(outcome="failure").order_by(AuditEvent.id.desc()).first()
    assert event is not None and event.error_code == code


def signed_in(response) -> None:
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    assert response.location == "/portal/"


def no_session_written() -> None:
    assert db.session.query(UserSession).count() == 0


# --- the happy variants ----------------------------------------------------------------------


def test_response_and_assertion_both_signed_is_accepted(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    signed_in(
        post_acs(
            client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id=request_id, sign_response=True)
        )
    )


def test_okta_style_inclusive_namespaces_prefix_list_is_accepted(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    saml = idp.response(acme["sp"], email=EMAIL, request_id=request_id, sign_response=True, inclusive_prefixes=("xs",))
    assert b"InclusiveNamespaces" in base64.b64decode(saml)
    signed_in(post_acs(client, acme["connection"], saml))


def test_xpath_inside_a_transform_is_refused(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    element = idp.response_element(acme["sp"], email=EMAIL, request_id=request_id)
    c14n = element.findall(f".//{{{DS}}}Transform")[-1]
    etree.SubElement(c14n, f"{{{DS}}}XPath").text = "count(//. | //@* | //namespace::*)"
    refused(post_acs(client, acme["connection"], encode(element)), "SAML_FORBIDDEN_TRANSFORM")


def test_connection_that_expects_a_signed_response_accepts_one(client, make_account, make_connection, make_user, idp):
    account = make_account()
    connection = make_connection(account, signed_element="response")
    make_user(account, EMAIL)
    request_id = start_sso(client, EMAIL)
    saml = idp.response(
        sp_values(connection).as_dict(), email=EMAIL, request_id=request_id, sign_assertion=False, sign_response=True
    )
    signed_in(post_acs(client, connection, saml))


def test_certificate_rollover_accepts_either_certificate(client, acme, idp):
    new_idp = TestIdP.create(entity_id=idp.entity_id)
    add_certificates(acme["connection"], [certificate_info(new_idp.cert_pem)])
    db.session.commit()
    assert len(acme["connection"].certificates) == 2
    for signer in (idp, new_idp):
        request_id = start_sso(client, EMAIL)
        signed_in(post_acs(client, acme["connection"], signer.response(acme["sp"], email=EMAIL, request_id=request_id)))


# --- signatures ------------------------------------------------------------------------------


def test_unsigned_response_is_refused(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    response = post_acs(
        client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id=request_id, sign_assertion=False)
    )
    refused(response, "SAML_UNSIGNED")
    no_session_written()


def test_only_response_signed_is_refused_when_the_assertion_must_be(
    client, make_account, make_connection, make_user, idp
):
    account = make_account()
    connection = make_connection(account, signed_element="assertion")
    make_user(account, EMAIL)
    request_id = start_sso(client, EMAIL)
    saml = idp.response(
        sp_values(connection).as_dict(), email=EMAIL, request_id=request_id, sign_assertion=False, sign_response=True
    )
    refused(post_acs(client, connection, saml), "SAML_UNSIGNED")


def test_signature_by_an_unknown_key_is_refused(client, acme):
    forger = TestIdP.create()
    request_id = start_sso(client, EMAIL)
    refused(
        post_acs(client, acme["connection"], forger.response(acme["sp"], email=EMAIL, request_id=request_id)),
        "SAML_SIGNATURE_INVALID",
    )


def test_tampered_email_after_signing_is_refused(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    element = idp.response_element(acme["sp"], email="agent@acme.example", request_id=request_id)
    for node in element.iter(f"{{{SAML}}}NameID", f"{{{SAML}}}AttributeValue"):
        node.text = EMAIL
    refused(post_acs(client, acme["connection"], encode(element)), "SAML_SIGNATURE_INVALID")
    no_session_written()


def test_sha1_signature_is_refused(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    refused(
        post_acs(
            client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id=request_id, algorithm="sha1")
        ),
        "SAML_WEAK_ALGORITHM",
    )


def test_xslt_transform_is_refused_before_any_signature_work(client, acme, idp, monkeypatch):
    calls = []
    original = OneLogin_Saml2_Utils.validate_sign
    monkeypatch.setattr(
        OneLogin_Saml2_Utils, "validate_sign", staticmethod(lambda *a, **k: calls.append(1) or original(*a, **k))
    )
    request_id = start_sso(client, EMAIL)
    element = idp.response_element(acme["sp"], email=EMAIL, request_id=request_id)
    transforms = element.find(f".//{{{DS}}}Transforms")
    xslt = etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116")
    etree.SubElement(xslt, "{http://www.w3.org/1999/XSL/Transform}stylesheet", version="1.0")
    refused(post_acs(client, acme["connection"], encode(element)), "SAML_FORBIDDEN_TRANSFORM")
    assert calls == []


def test_signature_wrapping_with_a_second_assertion_is_refused(client, acme, idp):
    request_id = start_sso(client, "agent@acme.example")
    element = idp.response_element(acme["sp"], email="agent@acme.example", request_id=request_id)
    evil = etree.fromstring(etree.tostring(element.find(f"{{{SAML}}}Assertion")))
    evil.set("ID", "_evil")
    evil.remove(evil.find(f"{{{DS}}}Signature"))
    for node in evil.iter(f"{{{SAML}}}NameID", f"{{{SAML}}}AttributeValue"):
        node.text = EMAIL
    element.insert(2, evil)
    response = post_acs(client, acme["connection"], encode(element))
    assert response.status_code == 400
    no_session_written()


def test_comment_inside_the_email_does_not_truncate_it(client, acme, idp, make_user):
    """CVE-2017-11427 style: the IdP vouches for 'admin@acme.example.evil.test'; a comment after
    'admin@acme.example' must not make us read only the part before it."""
    request_id = start_sso(client, EMAIL)
    element = idp.response_element(
        acme["sp"], email="admin@acme.example.evil.test", request_id=request_id, sign_assertion=False
    )
    for node in element.iter(f"{{{SAML}}}NameID", f"{{{SAML}}}AttributeValue"):
        node.text = "admin@acme.example"
        comment = etree.Comment("x")
        comment.tail = ".evil.test"
        node.append(comment)
    sign_element(element.find(f"{{{SAML}}}Assertion"), idp.key_pem, idp.cert_pem)
    response = post_acs(client, acme["connection"], encode(element))
    assert response.status_code in (400, 403)
    no_session_written()


# --- replay and InResponseTo ------------------------------------------------------------------


def test_replayed_idp_initiated_response_is_refused(client, make_account, make_connection, make_user, idp):
    account = make_account()
    connection = make_connection(account, allow_idp_initiated=True)
    make_user(account, EMAIL)
    saml = idp.response(sp_values(connection).as_dict(), email=EMAIL, request_id=None)
    signed_in(post_acs(client, connection, saml))
    client.post("/logout", data={"csrf_token": csrf_from(client, "/portal/")})  # the logout button in the navigation
    refused(post_acs(client, connection, saml), "SAML_REPLAY")


def test_same_assertion_id_answering_a_second_request_is_a_replay(client, acme, idp):
    first = start_sso(client, EMAIL)
    signed_in(
        post_acs(
            client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id=first, assertion_id="_same")
        )
    )
    second = start_sso(client, EMAIL)
    refused(
        post_acs(
            client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id=second, assertion_id="_same")
        ),
        "SAML_REPLAY",
    )


def test_replay_cache_entry_lives_until_the_assertion_expires(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    post_acs(
        client,
        acme["connection"],
        idp.response(acme["sp"], email=EMAIL, request_id=request_id, assertion_id="_kept", lifetime=minutes(5)),
    )
    entry = db.session.get(UsedAssertion, (acme["connection"].id, "_kept"))
    assert entry is not None
    assert entry.expires_at > dt.datetime.now(dt.UTC).replace(tzinfo=None) + minutes(4)


def test_concurrent_replays_sign_in_once(app, make_account, make_connection, make_user, idp):
    """Two workers receive the same response at once: the unique key lets exactly one through."""
    account = make_account()
    connection = make_connection(account, allow_idp_initiated=True)
    make_user(account, EMAIL)
    saml = idp.response(sp_values(connection).as_dict(), email=EMAIL, request_id=None)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        with app.test_request_context("/saml/acs", base_url="https://sso.test"):
            barrier.wait()
            try:
                consume_response(connection.id, saml, browser_binding=None)
                db.session.commit()  # as the ACS does, with what the sign-in produced
                outcomes.append("ok")
            except SignInError as err:
                outcomes.append(err.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["SAML_REPLAY", "ok"]


def test_unknown_in_response_to_is_refused(client, acme, idp):
    start_sso(client, EMAIL)
    refused(
        post_acs(client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id="_never_sent")),
        "SAML_IN_RESPONSE_TO_MISMATCH",
    )


def test_response_in_another_browser_is_refused(client, app, acme, idp):
    request_id = start_sso(client, EMAIL)
    other_browser = another_browser(app)
    saml = idp.response(acme["sp"], email=EMAIL, request_id=request_id)
    refused(post_acs(other_browser, acme["connection"], saml), "SAML_IN_RESPONSE_TO_MISMATCH")


def test_pending_request_of_another_connection_is_refused(client, acme, idp, make_account, make_connection):
    request_id = start_sso(client, EMAIL)
    other = make_connection(make_account("other", "Other"))
    saml = idp.response(sp_values(other).as_dict(), email=EMAIL, request_id=request_id)
    refused(post_acs(client, other, saml), "SAML_IN_RESPONSE_TO_MISMATCH")


def test_expired_pending_request_is_refused(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    db.session.get(PendingRequest, request_id).expires_at = dt.datetime(2000, 1, 1)
    db.session.commit()
    refused(
        post_acs(client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id=request_id)),
        "SAML_IN_RESPONSE_TO_MISMATCH",
    )


def test_pending_request_is_single_use(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    signed_in(post_acs(client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id=request_id)))
    again = idp.response(acme["sp"], email=EMAIL, request_id=request_id)
    refused(post_acs(client, acme["connection"], again), "SAML_IN_RESPONSE_TO_MISMATCH")


def test_failed_response_consumes_the_pending_request(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    post_acs(
        client,
        acme["connection"],
        idp.response(acme["sp"], email=EMAIL, request_id=request_id, audience="https://wrong"),
    )
    assert db.session.get(PendingRequest, request_id) is None


def test_unsolicited_assertion_wrapped_in_a_forged_envelope_is_refused(client, acme, idp):
    """The envelope's InResponseTo is not signed when only the assertion is: the signed
    SubjectConfirmationData must name the same request."""
    request_id = start_sso(client, EMAIL)
    saml = idp.response(acme["sp"], email=EMAIL, request_id=request_id, scd_in_response_to=None)
    refused(post_acs(client, acme["connection"], saml), "SAML_IN_RESPONSE_TO_MISMATCH")
    no_session_written()


def test_subject_confirmation_naming_another_request_is_refused(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    saml = idp.response(acme["sp"], email=EMAIL, request_id=request_id, scd_in_response_to="_other_request")
    response = post_acs(client, acme["connection"], saml)
    assert response.status_code == 400
    no_session_written()


# --- IdP-initiated -----------------------------------------------------------------------------


def test_unsolicited_response_is_refused_by_default(client, acme, idp):
    refused(
        post_acs(client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id=None)), "SAML_UNSOLICITED"
    )


def test_unsolicited_response_with_in_response_to_on_the_subject_is_refused(
    client, make_account, make_connection, make_user, idp
):
    account = make_account()
    connection = make_connection(account, allow_idp_initiated=True)
    make_user(account, EMAIL)
    saml = idp.response(
        sp_values(connection).as_dict(), email=EMAIL, request_id=None, scd_in_response_to="_someone_elses"
    )
    response = post_acs(client, connection, saml)
    assert response.status_code == 400
    no_session_written()


def test_unsolicited_response_never_switches_a_signed_in_browser_to_someone_else(
    client, make_account, make_connection, make_user, idp, sign_in
):
    account = make_account()
    connection = make_connection(account, allow_idp_initiated=True)
    make_user(account, EMAIL)
    make_user(account, "other@acme.example")
    signed_in(sign_in(connection, EMAIL))
    saml = idp.response(sp_values(connection).as_dict(), email="other@acme.example", request_id=None)
    refused(post_acs(client, connection, saml), "SAML_SESSION_CONFLICT")
    assert client.get("/api/v1/me").json["email"] == EMAIL


# --- audience, destination, recipient --------------------------------------------------------


def test_missing_audience_is_refused(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    refused(
        post_acs(
            client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id=request_id, audience=None)
        ),
        "SAML_AUDIENCE_MISSING",
    )


def test_wrong_audience_is_refused(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    saml = idp.response(acme["sp"], email=EMAIL, request_id=request_id, audience="https://other-sp.example/metadata")
    refused(post_acs(client, acme["connection"], saml), "SAML_AUDIENCE_MISMATCH")


def test_wrong_destination_is_refused(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    saml = idp.response(acme["sp"], email=EMAIL, request_id=request_id, destination="https://sso.test/saml/999/acs")
    refused(post_acs(client, acme["connection"], saml), "SAML_DESTINATION_MISMATCH")


def test_destination_with_extra_path_is_refused(client, acme, idp):
    """python3-saml compares with startswith(); we compare exactly."""
    request_id = start_sso(client, EMAIL)
    saml = idp.response(acme["sp"], email=EMAIL, request_id=request_id, destination=acme["sp"]["acs_url"] + "/x")
    refused(post_acs(client, acme["connection"], saml), "SAML_DESTINATION_MISMATCH")


def test_signed_response_without_destination_is_refused(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    saml = idp.response(acme["sp"], email=EMAIL, request_id=request_id, destination=None, sign_response=True)
    refused(post_acs(client, acme["connection"], saml), "SAML_DESTINATION_MISSING")


def test_destination_comes_from_base_url_not_the_host_header(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    client.environ_base["HTTP_HOST"] = "evil.example"
    acs_on_evil = acme["sp"]["acs_url"].replace("sso.test", "evil.example")
    saml = idp.response(acme["sp"], email=EMAIL, request_id=request_id, destination=acs_on_evil, recipient=acs_on_evil)
    response = client.post(
        f"/saml/{acme['connection'].id}/acs", data={"SAMLResponse": saml}, base_url="https://evil.example"
    )
    assert response.status_code == 400
    no_session_written()


def test_recipient_containing_the_acs_url_is_refused(client, acme, idp):
    """python3-saml accepts any Recipient that contains the ACS URL; we want it exactly."""
    request_id = start_sso(client, EMAIL)
    saml = idp.response(acme["sp"], email=EMAIL, request_id=request_id, recipient=acme["sp"]["acs_url"] + "?evil")
    refused(post_acs(client, acme["connection"], saml), "SAML_RECIPIENT_MISMATCH")


def test_missing_recipient_is_refused(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    refused(
        post_acs(
            client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id=request_id, recipient=None)
        ),
        "SAML_RECIPIENT_MISMATCH",
    )


def test_wrong_issuer_is_refused(client, acme, idp):
    impostor = TestIdP(idp.key_pem, idp.cert_pem, entity_id="https://impostor.example/")
    request_id = start_sso(client, EMAIL)
    refused(
        post_acs(client, acme["connection"], impostor.response(acme["sp"], email=EMAIL, request_id=request_id)),
        "SAML_ISSUER_MISMATCH",
    )


def test_idp_error_status_is_refused(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    saml = idp.response(
        acme["sp"],
        email=EMAIL,
        request_id=request_id,
        status="urn:oasis:names:tc:SAML:2.0:status:Responder",
        sign_assertion=False,
        sign_response=True,
    )
    refused(post_acs(client, acme["connection"], saml), "SAML_STATUS_ERROR")


# --- clock skew --------------------------------------------------------------------------------


def _now_shifted(seconds: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)


def test_idp_clock_slightly_ahead_is_tolerated(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    saml = idp.response(
        acme["sp"], email=EMAIL, request_id=request_id, now=_now_shifted(90), not_before_offset=dt.timedelta(0)
    )
    signed_in(post_acs(client, acme["connection"], saml))


def test_not_before_beyond_the_skew_is_refused(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    saml = idp.response(
        acme["sp"], email=EMAIL, request_id=request_id, now=_now_shifted(200), not_before_offset=dt.timedelta(0)
    )
    refused(post_acs(client, acme["connection"], saml), "SAML_NOT_YET_VALID")


def test_expired_assertion_is_refused(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    saml = idp.response(acme["sp"], email=EMAIL, request_id=request_id, now=_now_shifted(-600), lifetime=minutes(5))
    refused(post_acs(client, acme["connection"], saml), "SAML_EXPIRED")


def test_clock_skew_is_configurable(app, client, acme, idp, monkeypatch):
    monkeypatch.setitem(app.config, "SAML_CLOCK_SKEW_SECONDS", 0)
    request_id = start_sso(client, EMAIL)
    saml = idp.response(
        acme["sp"], email=EMAIL, request_id=request_id, now=_now_shifted(60), not_before_offset=dt.timedelta(0)
    )
    refused(post_acs(client, acme["connection"], saml), "SAML_NOT_YET_VALID")


# --- bad input at the ACS --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("not base64 at all!", "SAML_MALFORMED"),
        (base64.b64encode(b"this is not xml").decode(), "SAML_MALFORMED"),
        (base64.b64encode(b"<a><b></a>").decode(), "SAML_MALFORMED"),
        (
            base64.b64encode(
                b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&lol2;</samlp:Response>'
            ).decode(),
            "SAML_DOCTYPE",
        ),
        (
            base64.b64encode(b'<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>').decode(),
            "SAML_MALFORMED",
        ),
        ("", "SAML_MALFORMED"),
    ],
    ids=["not-base64", "not-xml", "broken-xml", "doctype", "wrong-root", "empty-field"],
)
def test_malformed_input_is_a_clean_400_with_only_an_audit_event(client, acme, body, code):
    response = client.post(f"/saml/{acme['connection'].id}/acs", data={"SAMLResponse": body})
    refused(response, code)
    assert db.session.query(UsedAssertion).count() == 0
    no_session_written()


def test_response_without_status_or_assertion_is_refused(client, make_account, make_connection):
    connection = make_connection(make_account(), allow_idp_initiated=True)
    body = base64.b64encode(
        b'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_1" Version="2.0"/>'
    ).decode()
    refused(client.post(f"/saml/{connection.id}/acs", data={"SAMLResponse": body}), "SAML_MALFORMED")


def test_missing_field_is_refused(client, acme):
    refused(client.post(f"/saml/{acme['connection'].id}/acs", data={"other": "x"}), "SAML_MALFORMED")


def test_huge_body_is_refused_with_413(client, acme):
    response = client.post(f"/saml/{acme['connection'].id}/acs", data={"SAMLResponse": "A" * (300 * 1024)})
    refused(response, "SAML_TOO_LARGE")
    assert response.status_code == 413


def test_get_to_the_acs_is_a_405_page_with_an_audit_event(client, acme):
    response = client.get(f"/saml/{acme['connection'].id}/acs")
    refused(response, "ACS_METHOD_NOT_ALLOWED")
    assert response.status_code == 405


def test_unknown_connection_is_a_404_with_an_audit_event(client, acme, idp):
    refused(client.post("/saml/424242/acs", data={"SAMLResponse": idp.response(acme["sp"])}), "CONNECTION_NOT_FOUND")


def test_disabled_connection_is_refused(client, make_account, make_connection, make_user, idp):
    account = make_account()
    connection = make_connection(account, status="tested", allow_idp_initiated=True)
    make_user(account, EMAIL)
    refused(
        post_acs(client, connection, idp.response(sp_values(connection).as_dict(), email=EMAIL)), "CONNECTION_DISABLED"
    )


def test_error_page_does_not_leak_the_details(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    saml = idp.response(acme["sp"], email=EMAIL, request_id=request_id, audience="https://secret-audience.example")
    response = post_acs(client, acme["connection"], saml)
    event = db.session.query(AuditEvent).filter_by(error_code="SAML_AUDIENCE_MISMATCH").one()
    assert "not a valid audience" in event.details["reason"]
    assert b"not a valid audience" not in response.data
    assert acme["sp"]["sp_entity_id"].encode() not in response.data


def test_ids_beyond_the_integer_range_are_404_not_500(client, acme, idp):
    for path in ("/saml/99999999999/metadata", "/saml/99999999999/acs"):
        assert client.post(path, data={"SAMLResponse": "x"}).status_code in (404, 405)
        assert client.get(path).status_code in (404, 405)
