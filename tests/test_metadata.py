"""Reading IdP metadata: every bad file gets a code and a message a person can act on."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from app.saml.certs import pem_body
from app.saml.metadata import MetadataError, parse_idp_metadata

MD = "urn:oasis:names:tc:SAML:2.0:metadata"


def idp_metadata(
    cert_pem: str | None, *, entity_id: str = "https://idp.example.test/saml/metadata", extra_cert: str | None = None
) -> bytes:
    """IdP metadata as IdPs publish it (used by other tests too)."""
    keys = "".join(
        f'<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>'
        f"<ds:X509Certificate>{pem_body(pem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        for pem in (cert_pem, extra_cert)
        if pem
    )
    return (
        f'<?xml version="1.0"?><md:EntityDescriptor xmlns:md="{MD}" entityID="{entity_id}">'
        f'<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{keys}'
        '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example.test/sso/post"/>'
        '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/sso/redirect"/>'
        "</md:IDPSSODescriptor></md:EntityDescriptor>"
    ).encode()


def make_cert(*, days: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_parses_entity_sso_url_and_certificates(idp):
    second = make_cert(days=20)
    parsed = parse_idp_metadata(
        b"\xef\xbb\xbf" + idp_metadata(idp.cert_pem, extra_cert=second)
    )  # with a BOM, as Entra sends
    assert parsed.entity_id == "https://idp.example.test/saml/metadata"
    assert parsed.sso_url == "https://idp.example.test/sso/redirect"  # Redirect binding preferred
    assert len(parsed.certificates) == 2
    assert len(parsed.certificates[0].fingerprint_sha256) == 95
    assert any("expires on" in warning for warning in parsed.warnings)


def test_sha1_signed_certificate_is_warned_about():
    legacy = (Path(__file__).parent / "data" / "sha1-signed-cert.pem").read_text()  # made with openssl -sha1
    parsed = parse_idp_metadata(idp_metadata(legacy))
    assert any("SHA-1" in warning for warning in parsed.warnings)


@pytest.mark.parametrize(
    ("document", "code"),
    [
        (b"", "METADATA_EMPTY"),
        (b"this is not xml", "METADATA_NOT_XML"),
        (
            b'<!DOCTYPE x [<!ENTITY a "b">]><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"/>',
            "METADATA_NOT_XML",
        ),
        (b"<html><body>Sign in</body></html>", "METADATA_NOT_SAML"),
        (
            f'<md:EntityDescriptor xmlns:md="{MD}" entityID="x"><md:SPSSODescriptor/></md:EntityDescriptor>'.encode(),
            "METADATA_NO_IDP",
        ),
        (b"<x>" + b"a" * (600 * 1024) + b"</x>", "METADATA_TOO_LARGE"),
    ],
    ids=["empty", "not-xml", "doctype", "html", "sp-metadata", "too-large"],
)
def test_bad_documents(document, code):
    with pytest.raises(MetadataError) as error:
        parse_idp_metadata(document)
    assert error.value.code == code and error.value.message


def test_several_identity_providers_are_refused(idp):
    one = idp_metadata(idp.cert_pem).decode().split("?>", 1)[1]
    two = one.replace("https://idp.example.test/saml/metadata", "https://other.example/")
    document = f'<md:EntitiesDescriptor xmlns:md="{MD}">{one}{two}</md:EntitiesDescriptor>'
    with pytest.raises(MetadataError) as error:
        parse_idp_metadata(document)
    assert error.value.code == "METADATA_MULTIPLE_ENTITIES"


def test_no_signing_certificate_is_refused():
    with pytest.raises(MetadataError) as error:
        parse_idp_metadata(idp_metadata(None))
    assert error.value.code == "METADATA_NO_SIGNING_CERTIFICATE"


def test_expired_certificate_is_refused():
    with pytest.raises(MetadataError) as error:
        parse_idp_metadata(idp_metadata(make_cert(days=-1)))
    assert error.value.code == "METADATA_CERTIFICATE_EXPIRED"
    assert "expired on" in error.value.message
