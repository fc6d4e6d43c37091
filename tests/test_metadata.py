"""Reading IdP metadata: every bad file gets a code and a message a person can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.saml.metadata import MetadataError, parse_idp_metadata
from tests.helpers.metadata import MD, idp_metadata, make_cert


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
