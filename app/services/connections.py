"""IdP connection services: create, import the IdP side, certificates, edit, enable, disable,
delete. Callers commit. (The account's "SSO required" switch lives in ``app.services.accounts``.)"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select, update

from app import audit
from app.errors import CodedError
from app.extensions import db
from app.idp_plugins import PLUGINS_BY_KEY, get_plugin
from app.idp_plugins.base import IdpPlugin, SetupPath
from app.idp_plugins.render import find_path
from app.key_encryption import is_plaintext, reencrypt_private_key
from app.models import Account, AuditEvent, IdpCertificate, IdpConnection, SpEncryptionKey
from app.models.idp_connection import DRAFT, ENABLED, TESTED
from app.saml import (
    ENCRYPTION_MODES,
    MAX_METADATA_BYTES,
    OVERRIDABLE,
    CertificateInfo,
    MetadataError,
    ParsedMetadata,
    active_encryption_keys,
    certificate_warnings,
    check_idp_url,
    expiry_state,
    fetch_metadata,
    generate_key_pair,
    new_encryption_key,
    overrides_of,
    parse_idp_metadata,
    read_certificates,
    resolve_options,
)
from app.services.connection_tests import has_passed_saml_test, has_successful_test
from app.timeutil import utcnow

#: How the IdP side reached us; recorded on the ``connection.import`` audit event.
IMPORT_METHODS = ("file", "paste", "url", "manual")
#: NameID formats an admin may request instead of the plugin's (never transient: we match by email).
NAMEID_FORMATS = (
    "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
    "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
)
SIGNED_ELEMENTS = ("any", "assertion", "response", "both")
#: The security features that can be turned on today (the others are refused, not silently kept).
AVAILABLE_FEATURES = frozenset({"single_logout", "sign_requests", "encrypt_assertions"})
#: A review of parsed metadata stays confirmable this long.
IMPORT_REVIEW_SECONDS = 3600


class ConnectionChangeError(CodedError):
    """A connection change that cannot be made; the message says why."""


def manual_metadata(
    entity_id: str,
    sso_url: str,
    certificate_pems: list[str],
    slo_url: str | None = None,
    *,
    allow_http: bool | None = None,
) -> ParsedMetadata:
    """The IdP side typed in by hand, checked like metadata (https endpoints; http only in
    development, where ``METADATA_FETCH_ALLOW_INSECURE`` is on)."""
    if allow_http is None:
        allow_http = _allow_insecure()
    entity_id, sso_url, slo_url = entity_id.strip(), sso_url.strip(), (slo_url or "").strip() or None
    if not entity_id:
        raise MetadataError("MANUAL_NO_ENTITY_ID", "Enter the IdP's entity ID (also called Issuer).")
    check_idp_url(sso_url, "MANUAL_BAD_SSO_URL", "SSO URL", allow_http=allow_http)
    if slo_url:
        check_idp_url(slo_url, "MANUAL_BAD_SLO_URL", "logout URL", allow_http=allow_http)
    if not any(pem.strip() for pem in certificate_pems):
        raise MetadataError("MANUAL_NO_CERTIFICATE", "Paste the IdP's signing certificate (X.509, PEM or base64).")
    certificates = read_certificates([pem for pem in certificate_pems if pem.strip()], pasted=True)
    return ParsedMetadata(entity_id, sso_url, slo_url, certificates, certificate_warnings(certificates))


def _allow_insecure() -> bool:
    """Development only: http metadata URLs and IdP endpoints, metadata from private addresses."""
    return bool(current_app.config["METADATA_FETCH_ALLOW_INSECURE"])


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
        raise ConnectionChangeError(
            "PROVIDER_UNKNOWN", f"unknown provider {plugin_key!r} (choose from {', '.join(PLUGINS_BY_KEY)})"
        )
    key_pem, cert_pem = generate_key_pair(f"{current_app.config['BASE_URL']} SP")
    connection = IdpConnection(
        account_id=account.id,
        plugin_key=plugin_key,
        name=name or PLUGINS_BY_KEY[plugin_key].display_name,
        sp_certificate=cert_pem,
        status=DRAFT,
        settings={},
        idp_metadata_url=metadata_url,
    )
    connection.set_sp_private_key(key_pem)
    db.session.add(connection)
    if idp is not None:
        apply_idp_side(connection, idp)
    db.session.flush()
    audit.record(
        "connection.create",
        account_id=account.id,
        connection_id=connection.id,
        actor=actor,
        details={"provider": plugin_key, "idp_entity_id": connection.idp_entity_id},
    )
    return connection


def apply_idp_side(connection: IdpConnection, idp: ParsedMetadata) -> int:
    """Set entity ID and URLs from ``idp`` and add its certificates; returns how many were new."""
    connection.idp_entity_id = idp.entity_id
    connection.idp_sso_url = idp.sso_url
    connection.idp_slo_url = idp.slo_url
    return add_certificates(connection, idp.certificates)


def enable_connection(connection: IdpConnection, *, actor: str | None = None, require_test: bool = False) -> list[int]:
    """Turn sign-in through ``connection`` on; it must have the IdP side complete.

    An account signs in through one connection (``/sso/start`` picks the enabled one), so any
    other enabled connection of the account is disabled in the same transaction; their ids are
    returned. The wizard passes ``require_test``: then only a tested connection may be enabled, and
    while the account requires SSO only one whose test sign-in fully succeeded, so that switching
    IdPs can never lock everyone out. The command line may skip the test (operators decide).
    """
    if connection.status == ENABLED:
        return []
    if require_test and connection.status != TESTED:
        raise ConnectionChangeError(
            "CONNECTION_NOT_TESTED", "Run a test sign-in that reaches us first; then you can enable the connection."
        )
    if require_test and connection.account.sso_required and not has_successful_test(connection):
        raise ConnectionChangeError(
            "CONNECTION_NOT_PROVEN",
            "Your account requires SSO, so this connection can replace the current one only after a test "
            "sign-in that fully succeeded (a user of this account signed in). Run the test again with such a user.",
        )
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
        raise ConnectionChangeError(
            "CONNECTION_INCOMPLETE",
            f"{connection.name} cannot be enabled yet: it has no {', no '.join(missing)}. Import the IdP details first.",
        )
    replaced = [
        other
        for other in db.session.scalars(
            select(IdpConnection).where(
                IdpConnection.account_id == connection.account_id,
                IdpConnection.status == ENABLED,
                IdpConnection.id != connection.id,
            )
        )
    ]
    for other in replaced:
        other.status = _status_when_off(other)
        audit.record(
            "connection.disable",
            account_id=other.account_id,
            connection_id=other.id,
            actor=actor,
            details={"replaced_by": connection.id},
        )
    connection.status = ENABLED
    audit.record(
        "connection.enable",
        account_id=connection.account_id,
        connection_id=connection.id,
        actor=actor,
        details={"replaced": [other.id for other in replaced]} if replaced else None,
    )
    return [other.id for other in replaced]


@dataclass(frozen=True)
class EnabledConnection:
    """Another enabled connection of the account, as an admin reads about it before and after
    enabling one that replaces it ("Okta (enabled since 3 Nov)", never "connection 1")."""

    connection: IdpConnection
    #: When it was last enabled (its latest ``connection.enable`` event); None when nothing says.
    enabled_since: dt.datetime | None

    @property
    def label(self) -> str:
        if self.enabled_since is None:
            return f"{self.connection.name} (currently enabled)"
        return f"{self.connection.name} (enabled since {short_date(self.enabled_since)})"


def short_date(moment: dt.datetime, *, now: dt.datetime | None = None) -> str:
    """ "3 Nov" in the current year, "3 Nov 2025" otherwise: how people write a recent date."""
    now = now or utcnow()
    text = f"{moment.day} {moment:%b}"
    return text if moment.year == now.year else f"{text} {moment.year}"


def other_enabled_connections(connection: IdpConnection) -> list[EnabledConnection]:
    """The account's enabled connections other than ``connection``: enabling it replaces them."""
    others = db.session.scalars(
        select(IdpConnection)
        .where(
            IdpConnection.account_id == connection.account_id,
            IdpConnection.status == ENABLED,
            IdpConnection.id != connection.id,
        )
        .order_by(IdpConnection.id)
    )
    found = []
    for other in others:
        since = db.session.scalar(
            select(AuditEvent.created_at)
            .where(
                AuditEvent.action == "connection.enable",
                AuditEvent.connection_id == other.id,
                AuditEvent.created_at >= other.created_at,
            )
            .order_by(AuditEvent.created_at.desc())
            .limit(1)
        )
        found.append(EnabledConnection(other, since))
    return found


def _status_when_off(connection: IdpConnection) -> str:
    """``tested`` if a test sign-in ever reached us through it, else ``draft`` (enabled from the CLI)."""
    return TESTED if has_passed_saml_test(connection) else DRAFT


def _refuse_if_sso_depends_on(connection: IdpConnection, doing: str) -> None:
    """Users of an SSO-required account must keep one way in: its enabled connection stays."""
    if connection.status == ENABLED and connection.account.sso_required:
        raise ConnectionChangeError(
            "SSO_DEPENDS_ON_CONNECTION",
            f"Your account requires SSO and this is its enabled connection: users could not sign in at all. "
            f'Turn off "SSO required" first (or enable another tested connection), then {doing} it.',
        )


def choose_setup_path(connection: IdpConnection, key: str) -> SetupPath:
    """Remember which of the provider's setup paths the admin takes (Salesforce: a connected app
    or an external client app), so that the wizard's links return to its steps; the caller commits.
    Not audited: it changes what the walkthrough shows, not who can sign in."""
    path = find_path(get_plugin(connection.plugin_key), key)
    if path is None:
        raise ConnectionChangeError("SETUP_PATH_UNKNOWN", "Choose one of the ways to register us shown on the page.")
    connection.setup_path = path.key
    return path


def disable_connection(connection: IdpConnection, *, actor: str | None = None) -> None:
    """Stop sign-ins through ``connection``; its configuration stays, so it can be enabled again."""
    if connection.status != ENABLED:
        return
    _refuse_if_sso_depends_on(connection, "disable")
    connection.status = _status_when_off(connection)
    audit.record("connection.disable", account_id=connection.account_id, connection_id=connection.id, actor=actor)


def delete_connection(connection: IdpConnection, *, actor: str | None = None) -> None:
    """Delete ``connection`` and its certificates; the audit trail keeps its id.

    Sessions started through it stay valid until they end (like a user removed at the IdP, rule 5).
    """
    _refuse_if_sso_depends_on(connection, "delete")
    audit.record(
        "connection.delete",
        account_id=connection.account_id,
        connection_id=connection.id,
        actor=actor,
        details={
            "provider": connection.plugin_key,
            "name": connection.name,
            "idp_entity_id": connection.idp_entity_id,
            "status": connection.status,
        },
    )
    db.session.delete(connection)


def remove_certificate(connection: IdpConnection, certificate_id: int, *, actor: str | None = None) -> IdpCertificate:
    """Remove one IdP certificate (after a rollover); an enabled connection keeps at least one."""
    certificate = next((cert for cert in connection.certificates if cert.id == certificate_id), None)
    if certificate is None:
        raise ConnectionChangeError("CERTIFICATE_NOT_FOUND", "This certificate does not belong to this connection.")
    if not certificates_removable(connection):
        raise ConnectionChangeError(
            "LAST_CERTIFICATE", "This is the connection's only signing certificate: add the new one before removing it."
        )
    connection.certificates.remove(certificate)
    audit.record(
        "connection.certificate_remove",
        account_id=connection.account_id,
        connection_id=connection.id,
        actor=actor,
        details={"fingerprint_sha256": certificate.fingerprint_sha256, "not_after": certificate.not_after.isoformat()},
    )
    return certificate


def certificates_removable(connection: IdpConnection) -> bool:
    """Whether a certificate may be removed: an enabled connection keeps at least one."""
    return connection.status != ENABLED or len(connection.certificates) > 1


@dataclass(frozen=True)
class CertificateRow:
    """One IdP certificate as the connection page shows it."""

    certificate: IdpCertificate
    #: ``expired``, ``expiring`` or ``valid`` (``app.saml.certs.expiry_state``).
    state: str
    removable: bool


def certificate_rows(connection: IdpConnection) -> list[CertificateRow]:
    """The connection's IdP certificates with their expiry state and whether each can go."""
    now, removable = utcnow(), certificates_removable(connection)
    return [CertificateRow(cert, expiry_state(cert.not_after, now), removable) for cert in connection.certificates]


@dataclass(frozen=True)
class ConnectionSummary:
    """One row of an account's connections list."""

    connection: IdpConnection
    plugin: type[IdpPlugin]
    #: When the first of its IdP certificates expires (None without certificates).
    earliest_expiry: dt.datetime | None
    #: ``expired``, ``expiring`` or ``valid`` for that earliest certificate (None without one).
    expiry_state: str | None


def summarise(connection: IdpConnection) -> ConnectionSummary:
    """What the connections list shows about ``connection``."""
    earliest = min((cert.not_after for cert in connection.certificates), default=None)
    state = expiry_state(earliest, utcnow()) if earliest is not None else None
    return ConnectionSummary(connection, get_plugin(connection.plugin_key), earliest, state)


def connection_summaries(account: Account) -> list[ConnectionSummary]:
    """The account's connections as its connections list shows them, oldest first."""
    connections = db.session.scalars(
        select(IdpConnection).where(IdpConnection.account_id == account.id).order_by(IdpConnection.id)
    )
    return [summarise(connection) for connection in connections]


def update_connection_settings(
    connection: IdpConnection,
    *,
    name: str,
    email_attributes: list[str],
    signed_element: str | None,
    nameid_format: str | None,
    allow_idp_initiated: bool,
    actor: str | None = None,
) -> list[str]:
    """Change the admin-editable settings; empty overrides fall back to the plugin's defaults.

    Returns the names of the settings that changed (audited as ``connection.update``).
    """
    if signed_element and signed_element not in SIGNED_ELEMENTS:
        raise ConnectionChangeError("SETTING_INVALID", f"Choose what must be signed: {', '.join(SIGNED_ELEMENTS)}.")
    if nameid_format and nameid_format not in NAMEID_FORMATS:
        raise ConnectionChangeError("SETTING_INVALID", "Choose one of the offered NameID formats.")
    attributes = [value.strip() for value in email_attributes if value.strip()]
    if any(len(value) > 256 or any(ch.isspace() for ch in value) for value in attributes):
        raise ConnectionChangeError(
            "SETTING_INVALID", "Attribute names have no spaces and at most 256 characters; put one per line."
        )
    before = _editable(connection)
    connection.name = (
        name.strip()[:200] or PLUGINS_BY_KEY.get(connection.plugin_key, PLUGINS_BY_KEY["generic"]).display_name
    )
    overrides = {key: value for key, value in (connection.settings or {}).items() if key not in OVERRIDABLE}
    if attributes:
        overrides["email_attributes"] = attributes
    if signed_element:
        overrides["signed_element"] = signed_element
    if nameid_format:
        overrides["nameid_format"] = nameid_format
    connection.settings = overrides
    connection.allow_idp_initiated = allow_idp_initiated
    after = _editable(connection)
    return _record_changes(connection, before, after, actor=actor)


def update_connection_options(
    connection: IdpConnection,
    *,
    single_logout: bool | None = None,
    encrypt_assertions: str | None = None,
    sign_requests: bool | None = None,
    signed_element: str | None = None,
    allow_idp_initiated: bool | None = None,
    actor: str | None = None,
) -> list[str]:
    """Change the security options given (None leaves one as it is), with the pages' checks.

    Returns the names of the options that changed (audited as ``connection.update``, like the
    settings page). Every option is off until an admin turns it on.
    """
    plugin = get_plugin(connection.plugin_key)
    if signed_element is not None and signed_element not in SIGNED_ELEMENTS:
        raise ConnectionChangeError("SETTING_INVALID", f"Choose what must be signed: {', '.join(SIGNED_ELEMENTS)}.")
    if encrypt_assertions is not None and encrypt_assertions not in ENCRYPTION_MODES:
        raise ConnectionChangeError("SETTING_INVALID", f"Choose assertion encryption: {', '.join(ENCRYPTION_MODES)}.")
    if single_logout and not plugin.supports_slo:
        raise ConnectionChangeError("OPTION_UNSUPPORTED", f"{plugin.display_name} has no SAML Single Logout.")
    if allow_idp_initiated and not plugin.supports_idp_initiated:
        raise ConnectionChangeError(
            "OPTION_UNSUPPORTED", f"{plugin.display_name} does not start sign-ins from its own portal."
        )
    unavailable = [
        name
        for name, value in (("encrypt_assertions", encrypt_assertions), ("sign_requests", sign_requests))
        if value not in (None, False, "off") and name not in AVAILABLE_FEATURES
    ]
    if unavailable:
        raise ConnectionChangeError("OPTION_UNAVAILABLE", f"Not available yet: {', '.join(unavailable)}.")
    before = _options_view(connection)
    stored = dict(connection.settings or {})
    for name, value in (
        ("single_logout", single_logout),
        ("encrypt_assertions", encrypt_assertions),
        ("sign_requests", sign_requests),
        ("signed_element", signed_element),
    ):
        if value is not None:
            stored[name] = value
    connection.settings = stored
    if allow_idp_initiated is not None:
        connection.allow_idp_initiated = allow_idp_initiated
    if encrypt_assertions not in (None, "off") and not active_encryption_keys(connection):
        add_encryption_key(connection, actor=actor)
    after = _options_view(connection)
    return _record_changes(connection, before, after, actor=actor)


def add_encryption_key(connection: IdpConnection, *, actor: str | None = None) -> SpEncryptionKey:
    """A new encryption key pair, published in the SP metadata at once beside the current one
    (rollover: the IdP switches to it, then the old one is retired). The caller commits."""
    key = new_encryption_key(connection)
    db.session.flush()
    audit.record(
        "connection.encryption_key_add",
        account_id=connection.account_id,
        connection_id=connection.id,
        actor=actor,
        details={"key_id": key.id, "fingerprint_sha256": key.fingerprint_sha256},
    )
    return key


def retire_encryption_key(connection: IdpConnection, key_id: int, *, actor: str | None = None) -> SpEncryptionKey:
    """Stop publishing and trying one encryption key; never the last one while encryption is on."""
    active = active_encryption_keys(connection)
    key = next((candidate for candidate in active if candidate.id == key_id), None)
    if key is None:
        raise ConnectionChangeError(
            "KEY_NOT_FOUND", f"Connection {connection.id} has no active encryption key {key_id}."
        )
    if len(active) == 1 and resolve_options(connection).encrypt_assertions != "off":
        raise ConnectionChangeError(
            "KEY_LAST", "This is the only encryption key: add a new one and upload it to the IdP first."
        )
    key.retired_at = utcnow()
    audit.record(
        "connection.encryption_key_retire",
        account_id=connection.account_id,
        connection_id=connection.id,
        actor=actor,
        details={"key_id": key.id, "fingerprint_sha256": key.fingerprint_sha256},
    )
    return key


def _options_view(connection: IdpConnection) -> dict[str, Any]:
    """The options as ``update_connection_options`` sets them, resolved (defaults filled in)."""
    options = resolve_options(connection)
    return {
        "single_logout": options.single_logout,
        "encrypt_assertions": options.encrypt_assertions,
        "sign_requests": options.sign_requests,
        "signed_element": options.signed_element,
        "allow_idp_initiated": connection.allow_idp_initiated,
    }


def _record_changes(
    connection: IdpConnection, before: dict[str, Any], after: dict[str, Any], *, actor: str | None
) -> list[str]:
    """Audit what changed between two views of a connection's settings; return the names."""
    changed = [key for key in after if before[key] != after[key]]
    if changed:
        audit.record(
            "connection.update",
            account_id=connection.account_id,
            connection_id=connection.id,
            actor=actor,
            details={"changed": {key: {"from": before[key], "to": after[key]} for key in changed}},
        )
    return changed


def _editable(connection: IdpConnection) -> dict[str, Any]:
    return {
        "name": connection.name,
        **{name: overrides_of(connection).get(name) for name in OVERRIDABLE},
        "allow_idp_initiated": connection.allow_idp_initiated,
    }


# --- importing the IdP side -------------------------------------------------------------------


@dataclass(frozen=True)
class ImportPreview:
    """What confirming an import would change, for the review page."""

    idp: ParsedMetadata
    method: str
    metadata_url: str | None
    #: The current value when the import would change it, else None.
    entity_id_was: str | None
    sso_url_was: str | None
    new_fingerprints: frozenset[str]
    #: An enabled connection changes at once; a tested one goes back to draft when the IdP moved.
    takes_effect_now: bool
    needs_new_test: bool


def preview_import(
    connection: IdpConnection, idp: ParsedMetadata, *, method: str, metadata_url: str | None
) -> ImportPreview:
    """Compare parsed metadata with the connection, without changing anything."""
    known = {cert.fingerprint_sha256 for cert in connection.certificates}
    entity_changed = bool(connection.idp_entity_id) and connection.idp_entity_id != idp.entity_id
    sso_changed = bool(connection.idp_sso_url) and connection.idp_sso_url != idp.sso_url
    return ImportPreview(
        idp=idp,
        method=method,
        metadata_url=metadata_url,
        entity_id_was=connection.idp_entity_id if entity_changed else None,
        sso_url_was=connection.idp_sso_url if sso_changed else None,
        new_fingerprints=frozenset(cert.fingerprint_sha256 for cert in idp.certificates) - known,
        takes_effect_now=connection.status == ENABLED,
        needs_new_test=connection.status == TESTED and (entity_changed or sso_changed),
    )


#: Longest values the connection's columns hold.
_MAX_LENGTHS = {"entity ID": 1024, "SSO URL": 2048, "logout URL": 2048}


def read_idp_side(method: str, **given: Any) -> ParsedMetadata:
    """Read the IdP side the way the admin gave it; raises ``MetadataError`` with an actionable message."""
    idp = _read_idp_side(method, **given)
    for label, value in (("entity ID", idp.entity_id), ("SSO URL", idp.sso_url), ("logout URL", idp.slo_url or "")):
        if len(value) > _MAX_LENGTHS[label]:
            raise MetadataError(
                "METADATA_VALUE_TOO_LONG",
                f"The IdP's {label} is longer than {_MAX_LENGTHS[label]} characters; check that this is the right metadata.",
            )
    return idp


def _read_idp_side(
    method: str,
    *,
    raw: bytes | str = b"",
    url: str = "",
    entity_id: str = "",
    sso_url: str = "",
    slo_url: str = "",
    certificate: str = "",
) -> ParsedMetadata:
    if method in ("file", "paste"):
        # Checked before parsing: an upload is read only up to one byte past the cap.
        if len(raw) > MAX_METADATA_BYTES:
            raise MetadataError(
                "METADATA_TOO_LARGE",
                f"The metadata is larger than {MAX_METADATA_BYTES // 1024} KB; use the metadata of this one application, not a federation file.",
            )
        return parse_idp_metadata(raw, allow_http=_allow_insecure())
    if method == "url":
        try:
            body = fetch_metadata(
                url,
                allow_insecure=_allow_insecure(),
                deadline_seconds=current_app.config["METADATA_FETCH_DEADLINE_SECONDS"],
            )
        except MetadataError:
            raise
        except ValueError:  # urlsplit and IDNA refuse some malformed URLs ("https://[::1/x") with ValueError
            raise MetadataError(
                "METADATA_URL_INVALID", "This is not a valid URL. Enter the full metadata URL, starting with https://."
            ) from None
        return parse_idp_metadata(body, allow_http=_allow_insecure())
    if method == "manual":
        return manual_metadata(entity_id, sso_url, [certificate], slo_url or None)
    raise MetadataError("IMPORT_METHOD_UNKNOWN", f"Choose how to import: {', '.join(IMPORT_METHODS)}.")


def record_import_failure(
    connection: IdpConnection, err: MetadataError, *, method: str, url: str | None = None
) -> None:
    """Audit a refused import (nothing else is written): what the admin was told, and what the
    library said (``detail``), which only the audit trail keeps."""
    details: dict[str, Any] = {"method": method, "reason": err.message[:500], "metadata_url": url}
    if err.detail:
        details["detail"] = err.detail[:500]
    audit.record(
        "connection.import",
        outcome="failure",
        error_code=err.code,
        account_id=connection.account_id,
        connection_id=connection.id,
        details=details,
    )


def import_idp_side(
    connection: IdpConnection, idp: ParsedMetadata, *, method: str, metadata_url: str | None, actor: str | None = None
) -> int:
    """Apply a reviewed import: entity ID and URLs replaced, new certificates added, old ones kept.

    A tested connection whose IdP entity ID or SSO URL changed goes back to draft: the test no
    longer proves anything. Returns how many certificates were new.
    """
    preview = preview_import(connection, idp, method=method, metadata_url=metadata_url)
    added = apply_idp_side(connection, idp)
    if method == "url":
        connection.idp_metadata_url = metadata_url
    if preview.needs_new_test:
        connection.status = DRAFT
    audit.record(
        "connection.import",
        account_id=connection.account_id,
        connection_id=connection.id,
        actor=actor,
        details={
            "method": method,
            "metadata_url": metadata_url,
            "idp_entity_id": idp.entity_id,
            "idp_sso_url": idp.sso_url,
            "certificates_added": added,
            "warnings": idp.warnings,
            "status": connection.status,
        },
    )
    return added


def refresh_from_metadata_url(connection: IdpConnection, *, actor: str | None = None) -> int:
    """Re-import the connection's metadata URL (certificate rollover): new certificates are added.

    Held (``REFRESH_HELD``, nothing applied) when the IdP's entity ID or SSO URL would change.
    """
    if not connection.idp_metadata_url:
        raise MetadataError(
            "NO_METADATA_URL", "This connection was not imported from a metadata URL; import the new metadata instead."
        )
    idp = read_idp_side("url", url=connection.idp_metadata_url)
    preview = preview_import(connection, idp, method="url", metadata_url=connection.idp_metadata_url)
    if preview.entity_id_was is not None or preview.sso_url_was is not None:
        # A refresh runs unattended: a new identity or address of the IdP waits for a person.
        changed = [
            name for name, was in (("entity ID", preview.entity_id_was), ("SSO URL", preview.sso_url_was)) if was
        ]
        raise MetadataError(
            "REFRESH_HELD",
            f"The metadata at the URL changes the IdP's {' and '.join(changed)}: nothing was applied. "
            "Review it with 'Import metadata' from the URL.",
        )
    return import_idp_side(connection, idp, method="url", metadata_url=connection.idp_metadata_url, actor=actor)


def connections_with_metadata_url() -> list[IdpConnection]:
    """Every connection imported from a metadata URL (what ``flask idp refresh --all`` visits)."""
    return list(
        db.session.scalars(
            select(IdpConnection).where(IdpConnection.idp_metadata_url.is_not(None)).order_by(IdpConnection.id)
        )
    )


def _review_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="setup.import-review")


def seal_import_review(connection: IdpConnection, preview: ImportPreview) -> str:
    """A signed token carrying the parsed IdP side from the review page to its confirmation.

    Signed so that the confirmation applies exactly what was reviewed, for this connection only,
    without fetching the URL again or keeping state on the server.
    """
    idp = preview.idp
    return _review_serializer().dumps(
        {
            "connection": connection.id,
            "method": preview.method,
            "url": preview.metadata_url,
            "entity_id": idp.entity_id,
            "sso_url": idp.sso_url,
            "slo_url": idp.slo_url,
            "certificates": [cert.pem for cert in idp.certificates],
        }
    )


def open_import_review(connection: IdpConnection, token: str) -> tuple[ParsedMetadata, str, str | None]:
    """Return (IdP side, method, metadata URL) from a review token, re-checking the certificates."""
    try:
        data = _review_serializer().loads(token or "", max_age=IMPORT_REVIEW_SECONDS)
    except SignatureExpired:
        raise MetadataError(
            "IMPORT_REVIEW_EXPIRED", "This review is more than an hour old. Import the metadata again."
        ) from None
    except BadSignature:
        raise MetadataError(
            "IMPORT_REVIEW_INVALID", "This review could not be read. Import the metadata again."
        ) from None
    if (
        not isinstance(data, dict)
        or data.get("connection") != connection.id
        or data.get("method") not in IMPORT_METHODS
    ):
        raise MetadataError(
            "IMPORT_REVIEW_INVALID", "This review belongs to another connection. Import the metadata again."
        )
    certificates = read_certificates(list(data["certificates"]))
    idp = ParsedMetadata(
        data["entity_id"], data["sso_url"], data["slo_url"], certificates, certificate_warnings(certificates)
    )
    return idp, data["method"], data["url"]


@dataclass(frozen=True)
class KeyRotationResult:
    """What ``flask keys rotate`` did."""

    #: Keys re-encrypted under the keyring's first key.
    reencrypted: int
    #: Of those, keys that were still stored in plain text (written before encryption at rest).
    were_plaintext: int


def rotate_sp_key_encryption(*, actor: str | None = None, batch_size: int = 200) -> KeyRotationResult:
    """Re-encrypt every SP private key with the first key of SP_KEY_ENCRYPTION_KEY; plain-text rows
    are encrypted. The caller commits (all or nothing: a key no keyring entry opens stops the run).

    ``updated_at`` is left alone: the key itself does not change, so neither does the connection.
    """
    reencrypted = were_plaintext = 0
    last_id = 0
    while True:
        rows = db.session.execute(
            select(IdpConnection.id, IdpConnection.sp_private_key_encrypted)
            .where(IdpConnection.id > last_id)
            .order_by(IdpConnection.id)
            .limit(batch_size)
        ).all()
        if not rows:
            break
        for connection_id, stored in rows:
            new_value = reencrypt_private_key(stored, owner=f"IdP connection {connection_id}")
            db.session.execute(
                update(IdpConnection)
                .where(IdpConnection.id == connection_id)
                .values(sp_private_key_encrypted=new_value, updated_at=IdpConnection.updated_at)
                .execution_options(synchronize_session=False)
            )
            reencrypted += 1
            were_plaintext += int(is_plaintext(stored))
        last_id = rows[-1][0]
    # The assertion-encryption keys (Single Logout's issue) are kept the same way.
    for key in db.session.scalars(select(SpEncryptionKey).order_by(SpEncryptionKey.id)):
        stored = key.private_key
        key.private_key = reencrypt_private_key(stored, owner=f"encryption key {key.id}")
        reencrypted += 1
        were_plaintext += int(is_plaintext(stored))
    audit.record("sp_keys.rotate", actor=actor, details={"reencrypted": reencrypted, "were_plaintext": were_plaintext})
    return KeyRotationResult(reencrypted, were_plaintext)
