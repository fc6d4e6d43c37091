"""IdP connection services: create, add certificates, enable. Callers commit."""

from __future__ import annotations

from flask import current_app

from app import audit
from app.extensions import db
from app.idp_plugins import PLUGINS_BY_KEY
from app.models import Account, IdpCertificate, IdpConnection
from app.models.idp_connection import DRAFT, ENABLED
from app.saml.certs import CertificateInfo, generate_key_pair
from app.saml.metadata import MetadataError, ParsedMetadata, certificate_warnings, read_certificates


class ConnectionChangeError(ValueError):
    """A connection change that cannot be made; the message says why."""


def manual_metadata(entity_id: str, sso_url: str, certificate_pems: list[str], slo_url: str | None = None) -> ParsedMetadata:
    """The IdP side typed in by hand, checked like metadata."""
    entity_id, sso_url = entity_id.strip(), sso_url.strip()
    if not entity_id:
        raise MetadataError("MANUAL_NO_ENTITY_ID", "Enter the IdP's entity ID (also called Issuer).")
    if not sso_url.startswith(("https://", "http://")):
        raise MetadataError("MANUAL_BAD_SSO_URL", "Enter the IdP's SSO URL, starting with https://.")
    if not any(pem.strip() for pem in certificate_pems):
        raise MetadataError("MANUAL_NO_CERTIFICATE", "Paste the IdP's signing certificate (X.509, PEM or base64).")
    certificates = read_certificates([pem for pem in certificate_pems if pem.strip()])
    return ParsedMetadata(entity_id, sso_url, (slo_url or "").strip() or None, certificates, certificate_warnings(certificates))


def add_certificates(connection: IdpConnection, certificates: list[CertificateInfo]) -> int:
    """Add certificates the connection does not have yet (rollover keeps the old ones)."""
    known = {cert.fingerprint_sha256 for cert in connection.certificates}
    added = 0
    for info in certificates:
        if info.fingerprint_sha256 not in known:
            connection.certificates.append(
                IdpCertificate(pem=info.pem, fingerprint_sha256=info.fingerprint_sha256, not_after=info.not_after)
            )
            known.add(info.fingerprint_sha256)
            added += 1
    return added


def create_connection(
    account: Account,
    plugin_key: str,
    idp: ParsedMetadata | None = None,
    *,
    metadata_url: str | None = None,
    name: str = "",
    actor: str | None = None,
) -> IdpConnection:
    """Create a draft connection with a fresh SP key pair and (optionally) the IdP side."""
    if plugin_key not in PLUGINS_BY_KEY:
        raise ConnectionChangeError(f"unknown provider {plugin_key!r} (choose from {', '.join(PLUGINS_BY_KEY)})")
    key_pem, cert_pem = generate_key_pair(f"{current_app.config['BASE_URL']} SP")
    connection = IdpConnection(
        account_id=account.id,
        plugin_key=plugin_key,
        name=name or PLUGINS_BY_KEY[plugin_key].display_name,
        sp_private_key=key_pem,
        sp_certificate=cert_pem,
        status=DRAFT,
        settings={},
        idp_metadata_url=metadata_url,
    )
    db.session.add(connection)
    if idp is not None:
        apply_idp_side(connection, idp)
    db.session.flush()
    audit.record(
        "connection.create", account_id=account.id, connection_id=connection.id, actor=actor,
        details={"provider": plugin_key, "idp_entity_id": connection.idp_entity_id},
    )
    return connection


def apply_idp_side(connection: IdpConnection, idp: ParsedMetadata) -> int:
    """Set entity ID and URLs from ``idp`` and add its certificates; returns how many were new."""
    connection.idp_entity_id = idp.entity_id
    connection.idp_sso_url = idp.sso_url
    connection.idp_slo_url = idp.slo_url
    return add_certificates(connection, idp.certificates)


def enable_connection(connection: IdpConnection, *, actor: str | None = None) -> None:
    """Turn sign-in through ``connection`` on; it must have the IdP side complete."""
    missing = [
        label
        for label, present in (
            ("the IdP entity ID", connection.idp_entity_id),
            ("the IdP SSO URL", connection.idp_sso_url),
            ("a signing certificate", connection.certificates),
        )
        if not present
    ]
    if missing:
        raise ConnectionChangeError(f"cannot enable connection {connection.id}: it has no {', no '.join(missing)}")
    connection.status = ENABLED
    audit.record("connection.enable", account_id=connection.account_id, connection_id=connection.id, actor=actor)
