"""X.509 helpers: the SP's own key pair, and reading the IdP's certificates."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from app.timeutil import utcnow


@dataclass(frozen=True)
class CertificateInfo:
    """What an admin needs to know about a certificate."""

    pem: str
    fingerprint_sha256: str
    not_after: dt.datetime
    subject: str
    #: Signature algorithm of the certificate itself (``sha1WithRSAEncryption`` is warned about).
    signature_hash: str

    @property
    def is_expired(self) -> bool:
        return self.not_after <= utcnow()

    @property
    def state(self) -> str:
        """``expired``, ``expiring`` (within ``EXPIRY_WARNING_DAYS``) or ``valid``."""
        return expiry_state(self.not_after, utcnow())


#: A certificate expiring within this many days is called out to the admins.
EXPIRY_WARNING_DAYS = 30


def expiry_state(not_after: dt.datetime, now: dt.datetime) -> str:
    """``expired``, ``expiring`` (within ``EXPIRY_WARNING_DAYS``) or ``valid``: the one rule the
    pages and warnings use."""
    if not_after <= now:
        return "expired"
    if not_after <= now + dt.timedelta(days=EXPIRY_WARNING_DAYS):
        return "expiring"
    return "valid"


def generate_key_pair(common_name: str, *, years: int = 10) -> tuple[str, str]:
    """Return a new RSA-2048 private key and self-signed certificate, both PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def normalise_certificate(text: str) -> str:
    """Accept a PEM certificate or the bare base64 of one (as in metadata); return PEM.

    Raises ValueError with a readable reason when it is not a certificate.
    """
    body = text.strip()
    if "-----BEGIN CERTIFICATE-----" not in body:
        lines = "".join(body.split())
        body = (
            "-----BEGIN CERTIFICATE-----\n"
            + "\n".join(lines[i : i + 64] for i in range(0, len(lines), 64))
            + "\n-----END CERTIFICATE-----\n"
        )
    try:
        cert = x509.load_pem_x509_certificate(body.encode())
    except ValueError as exc:
        raise ValueError(f"not a valid X.509 certificate ({exc})") from None
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def certificate_info(pem: str) -> CertificateInfo:
    """Read fingerprint, expiry and subject of a PEM certificate."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    algorithm = cert.signature_hash_algorithm
    return CertificateInfo(
        pem=pem,
        fingerprint_sha256=":".join(digest[i : i + 2] for i in range(0, len(digest), 2)),
        not_after=cert.not_valid_after_utc.replace(tzinfo=None),
        subject=cert.subject.rfc4514_string(),
        signature_hash=algorithm.name if algorithm else "unknown",
    )


def pem_body(pem: str) -> str:
    """The base64 body of a PEM certificate on one line (the form python3-saml settings use)."""
    return "".join(line for line in pem.strip().splitlines() if "-----" not in line)
