"""Encrypted assertions: decrypted with the connection's encryption key, then checked as plain ones."""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from app.demo_idp.idp import encode
from app.extensions import db
from app.saml import active_encryption_keys, sp_metadata_xml, sp_values
from app.saml.schema_cache import validate_xml
from app.services.connections import (
    ConnectionChangeError,
    add_encryption_key,
    retire_encryption_key,
    update_connection_options,
)
from tests.helpers.audit import audit_events
from tests.helpers.signin import post_acs, start_sso
from tests.saml_idp import TestIdP

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
EMAIL = "admin@acme.example"


@pytest.fixture
def encrypted(acme) -> dict:
    """Acme with assertion encryption set to ``accept`` (a key pair made on the way)."""
    update_connection_options(acme["connection"], encrypt_assertions="accept")
    db.session.commit()
    return acme


def _key(connection) -> str:
    return active_encryption_keys(connection)[0].certificate


def _post(client, idp, connection, **kwargs):
    request_id = start_sso(client, EMAIL)
    saml = idp.response(sp_values(connection).as_dict(), email=EMAIL, request_id=request_id, **kwargs)
    return post_acs(client, connection, saml)


@pytest.mark.parametrize("content", ["aes256-gcm", "aes128-gcm", "aes256-cbc", "aes128-cbc"])
def test_an_encrypted_assertion_signs_in(client, encrypted, idp, content):
    connection = encrypted["connection"]
    response = _post(client, idp, connection, encrypt_to=_key(connection), encryption=content)
    assert response.status_code == 302, response.get_data(as_text=True)
    assert client.get("/api/v1/me").get_json()["email"] == EMAIL


def test_signed_response_around_an_encrypted_assertion(client, encrypted, idp):
    connection = encrypted["connection"]
    connection.settings = {**connection.settings, "signed_element": "both"}
    db.session.commit()
    response = _post(client, idp, connection, encrypt_to=_key(connection), sign_response=True)
    assert response.status_code == 302, response.get_data(as_text=True)


def test_plain_assertions_are_still_accepted_under_accept_and_refused_under_require(client, encrypted, idp):
    connection = encrypted["connection"]
    assert _post(client, idp, connection).status_code == 302
    update_connection_options(connection, encrypt_assertions="require")
    db.session.commit()
    response = _post(client, idp, connection)
    assert response.status_code == 400 and "SAML_ENCRYPTION_REQUIRED" in response.get_data(as_text=True)


def test_encrypted_assertion_refused_when_encryption_is_off(client, acme, idp, sp_key_pairs):
    _, cert = sp_key_pairs("Somebody")
    response = _post(client, idp, acme["connection"], encrypt_to=cert)
    assert response.status_code == 400 and "SAML_ENCRYPTION_OFF" in response.get_data(as_text=True)


def _tampered(idp, connection, change) -> str:
    element = idp.response_element(sp_values(connection).as_dict(), email=EMAIL, encrypt_to=_key(connection))
    change(element)
    return encode(element)


XENC = "{http://www.w3.org/2001/04/xmlenc#}"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (
            lambda root: (
                next(root.iter(f"{XENC}EncryptedKey"))
                .find(f"{XENC}EncryptionMethod")
                .set("Algorithm", "http://www.w3.org/2001/04/xmlenc#rsa-1_5")
            ),
            "SAML_WEAK_ENCRYPTION",
        ),
        (
            lambda root: (
                next(root.iter(f"{XENC}EncryptedData"))
                .find(f"{XENC}EncryptionMethod")
                .set("Algorithm", "http://www.w3.org/2001/04/xmlenc#tripledes-cbc")
            ),
            "SAML_WEAK_ENCRYPTION",
        ),
        (
            lambda root: setattr(
                next(next(root.iter(f"{XENC}EncryptedData")).iter(f"{XENC}CipherValue")),
                "text",
                base64.b64encode(b"\x00" * 64).decode(),
            ),
            "SAML_DECRYPTION_FAILED",
        ),
    ],
)
def test_bad_encryption_is_a_clean_400(client, encrypted, idp, change, code):
    connection = encrypted["connection"]
    connection.allow_idp_initiated = True
    db.session.commit()
    response = post_acs(client, connection, _tampered(idp, connection, change))
    assert response.status_code == 400 and code in response.get_data(as_text=True)
    assert audit_events("signin.sso", connection)[-1].error_code == code


def test_an_assertion_encrypted_to_another_key_is_refused(client, encrypted, idp, sp_key_pairs):
    _, other_cert = sp_key_pairs("Another SP")
    response = _post(client, idp, encrypted["connection"], encrypt_to=other_cert)
    assert response.status_code == 400 and "SAML_DECRYPTION_FAILED" in response.get_data(as_text=True)


def test_a_forged_signature_inside_the_encryption_is_still_refused(client, encrypted, idp):
    forger = TestIdP.create()
    connection = encrypted["connection"]
    request_id = start_sso(client, EMAIL)
    saml = forger.response(
        sp_values(connection).as_dict(), email=EMAIL, request_id=request_id, encrypt_to=_key(connection)
    )
    response = post_acs(client, connection, saml)
    assert response.status_code == 400 and "SAML_SIGNATURE_INVALID" in response.get_data(as_text=True)


def test_an_encrypted_assertion_is_not_replayable(client, encrypted, idp):
    connection = encrypted["connection"]
    connection.allow_idp_initiated = True
    db.session.commit()
    saml = idp.response(sp_values(connection).as_dict(), email=EMAIL, encrypt_to=_key(connection))
    assert post_acs(client, connection, saml).status_code == 302
    again = post_acs(client, connection, saml)
    assert again.status_code in (400, 409) and "SAML_" in again.get_data(as_text=True)


@pytest.mark.own_keys
def test_rollover_new_key_published_and_used_before_the_old_is_retired(client, encrypted, idp):
    connection = encrypted["connection"]
    old = active_encryption_keys(connection)[0]
    new = add_encryption_key(connection)
    db.session.commit()
    xml = sp_metadata_xml(connection)
    root = etree.fromstring(xml.encode())
    uses = [key.get("use") for key in root.iter(f"{{{MD}}}KeyDescriptor")]
    assert uses == ["signing", "encryption", "encryption"]
    assert not isinstance(validate_xml(xml, "saml-schema-metadata-2.0.xsd"), str)
    # Both keys decrypt while both are published.
    assert _post(client, idp, connection, encrypt_to=old.certificate).status_code == 302
    assert _post(client, idp, connection, encrypt_to=new.certificate).status_code == 302
    retire_encryption_key(connection, old.id)
    db.session.commit()
    response = _post(client, idp, connection, encrypt_to=old.certificate)
    assert response.status_code == 400 and "SAML_DECRYPTION_FAILED" in response.get_data(as_text=True)
    with pytest.raises(ConnectionChangeError) as refused:
        retire_encryption_key(connection, new.id)
    assert refused.value.code == "KEY_LAST"


def test_metadata_advertises_the_encryption_key_and_algorithms(encrypted):
    root = etree.fromstring(sp_metadata_xml(encrypted["connection"]).encode())
    [key] = [key for key in root.iter(f"{{{MD}}}KeyDescriptor") if key.get("use") == "encryption"]
    algorithms = [method.get("Algorithm") for method in key.findall(f"{{{MD}}}EncryptionMethod")]
    assert "http://www.w3.org/2009/xmlenc11#aes256-gcm" in algorithms
    assert not any("rsa-1_5" in algorithm for algorithm in algorithms)


def test_everything_on_metadata_lists_both_keys_and_both_slo_bindings(encrypted):
    connection = encrypted["connection"]
    update_connection_options(connection, single_logout=True, sign_requests=True)
    db.session.commit()
    xml = sp_metadata_xml(connection)
    assert not isinstance(validate_xml(xml, "saml-schema-metadata-2.0.xsd"), str)
    root = etree.fromstring(xml.encode())
    descriptor = root.find(f"{{{MD}}}SPSSODescriptor")
    assert descriptor.get("AuthnRequestsSigned") == "true"
    assert [key.get("use") for key in descriptor.findall(f"{{{MD}}}KeyDescriptor")] == ["signing", "encryption"]
    assert len(descriptor.findall(f"{{{MD}}}SingleLogoutService")) == 2


def test_a_tampered_signed_response_is_refused_before_decryption(client, encrypted, idp):
    """With the Response signed, a changed ciphertext fails the Response signature, checked before
    anything is decrypted (no padding oracle on AES-CBC), with the signature's code."""
    connection = encrypted["connection"]
    connection.settings = {**connection.settings, "signed_element": "both"}
    connection.allow_idp_initiated = True
    db.session.commit()
    element = idp.response_element(
        sp_values(connection).as_dict(),
        email=EMAIL,
        encrypt_to=_key(connection),
        encryption="aes256-cbc",
        sign_response=True,
    )
    cipher = next(next(element.iter(f"{XENC}EncryptedData")).iter(f"{XENC}CipherValue"))
    raw = bytearray(base64.b64decode(cipher.text))
    raw[20] ^= 0x01
    cipher.text = base64.b64encode(bytes(raw)).decode()
    response = post_acs(client, connection, encode(element))
    assert response.status_code == 400 and "SAML_SIGNATURE_INVALID" in response.get_data(as_text=True)
    assert "before decrypting" in audit_events("signin.sso", connection)[-1].details["reason"]
