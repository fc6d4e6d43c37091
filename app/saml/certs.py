"""X.509 helpers: the SP's own key pair, and reading the IdP's certificates."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
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


class CertificateUnreadable(ValueError):
    """Text that is not a usable X.509 certificate: ``str()`` is a plain sentence for the admin
    (what it is and what to paste instead); ``detail`` is the library's reason, for the audit only."""

    def __init__(self, sentence: str, detail: str = "") -> None:
        super().__init__(sentence)
        self.detail = detail


#: PEM labels of things admins paste by mistake, and what to say about each.
_WRONG_PEM_KINDS = (
    (
        "PRIVATE KEY",
        "This is a private key, not a certificate. Keep the private key secret (if it left your identity "
        "provider, create a new one there) and paste the certificate instead: it starts with "
        "-----BEGIN CERTIFICATE-----.",
    ),
    (
        "PUBLIC KEY",
        "This is a public key, not a certificate. Paste the whole certificate instead: it starts with "
        "-----BEGIN CERTIFICATE-----.",
    ),
    (
        "CERTIFICATE REQUEST",
        "This is a certificate request, not a certificate. Paste the signing certificate your identity "
        "provider shows: it starts with -----BEGIN CERTIFICATE-----.",
    ),
)
DAMAGED_CERTIFICATE = (
    "The certificate is incomplete or damaged: part of it is missing or changed. Copy it again in full, "
    "from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----, or download it from your identity provider."
)
_NOT_BASE64 = (
    "This text is not a certificate. Paste the signing certificate your identity provider shows: it "
    "starts with -----BEGIN CERTIFICATE----- (or is the long block of letters and digits between those lines)."
)
_BASE64_BODY = re.compile(r"^[A-Za-z0-9+/=]+$")


def normalise_certificate(text: str) -> str:
    """Accept a PEM certificate or the bare base64 of one (as in metadata); return PEM.

    Raises ``CertificateUnreadable`` with a sentence the admin can act on: a private key, a public
    key or a request pasted by mistake is named as such; a cut-short certificate is called damaged.
    The library's own words stay in ``detail``: they mean nothing to an admin.
    """
    body = text.strip()
    for label, sentence in _WRONG_PEM_KINDS:
        if re.search(rf"-----BEGIN [A-Z ]*{label}-----", body):
            raise CertificateUnreadable(sentence, f"PEM block {label}")
    if "-----BEGIN CERTIFICATE-----" not in body:
        lines = "".join(body.split())
        if not lines or not _BASE64_BODY.match(lines):
            raise CertificateUnreadable(_NOT_BASE64, "neither PEM nor base64")
        body = (
            "-----BEGIN CERTIFICATE-----\n"
            + "\n".join(lines[i : i + 64] for i in range(0, len(lines), 64))
            + "\n-----END CERTIFICATE-----\n"
        )
    try:
        cert = x509.load_pem_x509_certificate(body.encode())
    except ValueError as exc:
        raise CertificateUnreadable(DAMAGED_CERTIFICATE, f"{type(exc).__name__}: {exc}") from None
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def certificate_info(pem: str) -> CertificateInfo:
    """Read fingerprint, expiry and subject of a PEM certificate."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:  # an exotic signature: still a certificate we can show and trust
        algorithm = None
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
