"""IdP metadata and certificates as IdPs publish them, for the import, rollover and CLI tests."""

from __future__ import annotations

import datetime as dt
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from app.saml.certs import pem_body

MD = "urn:oasis:names:tc:SAML:2.0:metadata"


def idp_metadata(
    cert_pem: str | None, *, entity_id: str = "https://idp.example.test/saml/metadata", extra_cert: str | None = None
) -> bytes:
    """IdP metadata with one or two signing certificates."""
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


@cache
def _certificate_key() -> rsa.RSAPrivateKey:
    """One key for every ``make_cert``: those certificates are only read (fingerprint, expiry), never
    used to sign, and each has its own serial number, so they stay distinct certificates."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_cert(*, days: int) -> str:
    """A self-signed certificate that expires in ``days`` days (negative: already expired)."""
    key = _certificate_key()
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
