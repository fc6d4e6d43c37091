"""The generic SAML 2.0 core on python3-saml: start a sign-in, consume a response, SP metadata.

python3-saml validates the XML schema, the signatures, the issuer, timestamps and (loosely) the
destination. It leaves the rest to the application, so this module adds: a replay cache shared by
all workers, single-use InResponseTo bound to the browser and the connection and checked against
the *signed* SubjectConfirmationData, a mandatory AudienceRestriction, exact Destination and
Recipient matching, our own clock skew, and refusal of unsolicited responses unless enabled.
Only this package imports ``onelogin.saml2``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any, NamedTuple, cast
from urllib.parse import urlsplit

from flask import current_app
from lxml import etree
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.errors import OneLogin_Saml2_ValidationError
from onelogin.saml2.metadata import OneLogin_Saml2_Metadata
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from sqlalchemy import CursorResult, Table, bindparam, delete, insert, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app.errors import SignInError
from app.extensions import db
from app.models import MAX_ID, IdpCertificate, IdpConnection, PendingRequest, UsedAssertion
from app.models.idp_connection import ENABLED
from app.saml import driver
from app.saml.certs import certificate_info, normalise_certificate, pem_body
from app.saml.encryption import ADVERTISED_ALGORITHMS, active_encryption_keys, is_encrypted, open_encrypted_response
from app.saml.options import resolve_options
from app.saml.redirect_binding import signed_redirect
from app.saml.sp_metadata import add_encryption_keys, add_logout_services
from app.saml.urls import request_data_for, sp_values
from app.saml.xmlguard import NS, check_assertion_covered, check_signatures, decode_saml_response
from app.timeutil import utcnow

log = logging.getLogger(__name__)

#: python3-saml validation error codes, mapped to ours.
_LIBRARY_CODES: dict[int, str] = {
    OneLogin_Saml2_ValidationError.UNSUPPORTED_SAML_VERSION: "SAML_MALFORMED",
    OneLogin_Saml2_ValidationError.MISSING_ID: "SAML_MALFORMED",
    OneLogin_Saml2_ValidationError.WRONG_NUMBER_OF_ASSERTIONS: "SAML_INVALID",
    OneLogin_Saml2_ValidationError.MISSING_STATUS: "SAML_MALFORMED",
    OneLogin_Saml2_ValidationError.MISSING_STATUS_CODE: "SAML_MALFORMED",
    OneLogin_Saml2_ValidationError.STATUS_CODE_IS_NOT_SUCCESS: "SAML_STATUS_ERROR",
    OneLogin_Saml2_ValidationError.WRONG_SIGNED_ELEMENT: "SAML_SIGNATURE_INVALID",
    OneLogin_Saml2_ValidationError.ID_NOT_FOUND_IN_SIGNED_ELEMENT: "SAML_SIGNATURE_INVALID",
    OneLogin_Saml2_ValidationError.DUPLICATED_ID_IN_SIGNED_ELEMENTS: "SAML_SIGNATURE_INVALID",
    OneLogin_Saml2_ValidationError.INVALID_SIGNED_ELEMENT: "SAML_SIGNATURE_INVALID",
    OneLogin_Saml2_ValidationError.DUPLICATED_REFERENCE_IN_SIGNED_ELEMENTS: "SAML_SIGNATURE_INVALID",
    OneLogin_Saml2_ValidationError.UNEXPECTED_SIGNED_ELEMENTS: "SAML_SIGNATURE_INVALID",
    OneLogin_Saml2_ValidationError.WRONG_NUMBER_OF_SIGNATURES_IN_RESPONSE: "SAML_SIGNATURE_INVALID",
    OneLogin_Saml2_ValidationError.WRONG_NUMBER_OF_SIGNATURES_IN_ASSERTION: "SAML_SIGNATURE_INVALID",
    OneLogin_Saml2_ValidationError.INVALID_XML_FORMAT: "SAML_MALFORMED",
    OneLogin_Saml2_ValidationError.WRONG_INRESPONSETO: "SAML_IN_RESPONSE_TO_MISMATCH",
    OneLogin_Saml2_ValidationError.MISSING_CONDITIONS: "SAML_INVALID",
    OneLogin_Saml2_ValidationError.ASSERTION_TOO_EARLY: "SAML_NOT_YET_VALID",
    OneLogin_Saml2_ValidationError.ASSERTION_EXPIRED: "SAML_EXPIRED",
    OneLogin_Saml2_ValidationError.WRONG_NUMBER_OF_AUTHSTATEMENTS: "SAML_INVALID",
    OneLogin_Saml2_ValidationError.WRONG_DESTINATION: "SAML_DESTINATION_MISMATCH",
    OneLogin_Saml2_ValidationError.EMPTY_DESTINATION: "SAML_DESTINATION_MISSING",
    OneLogin_Saml2_ValidationError.WRONG_AUDIENCE: "SAML_AUDIENCE_MISMATCH",
    OneLogin_Saml2_ValidationError.ISSUER_MULTIPLE_IN_RESPONSE: "SAML_ISSUER_MISMATCH",
    OneLogin_Saml2_ValidationError.ISSUER_NOT_FOUND_IN_ASSERTION: "SAML_ISSUER_MISMATCH",
    OneLogin_Saml2_ValidationError.WRONG_ISSUER: "SAML_ISSUER_MISMATCH",
    OneLogin_Saml2_ValidationError.SESSION_EXPIRED: "SAML_EXPIRED",
    OneLogin_Saml2_ValidationError.WRONG_SUBJECTCONFIRMATION: "SAML_RECIPIENT_MISMATCH",
    OneLogin_Saml2_ValidationError.NO_SIGNED_MESSAGE: "SAML_UNSIGNED",
    OneLogin_Saml2_ValidationError.NO_SIGNED_ASSERTION: "SAML_UNSIGNED",
    OneLogin_Saml2_ValidationError.NO_SIGNATURE_FOUND: "SAML_UNSIGNED",
    OneLogin_Saml2_ValidationError.NO_ENCRYPTED_ASSERTION: "SAML_ENCRYPTION_REQUIRED",
    OneLogin_Saml2_ValidationError.KEYINFO_NOT_FOUND_IN_ENCRYPTED_DATA: "SAML_INVALID",
    OneLogin_Saml2_ValidationError.CHILDREN_NODE_NOT_FOUND_IN_KEYINFO: "SAML_INVALID",
    OneLogin_Saml2_ValidationError.UNSUPPORTED_RETRIEVAL_METHOD: "SAML_INVALID",
    OneLogin_Saml2_ValidationError.NO_NAMEID: "SAML_NO_EMAIL",
    OneLogin_Saml2_ValidationError.EMPTY_NAMEID: "SAML_NO_EMAIL",
    OneLogin_Saml2_ValidationError.INVALID_SIGNATURE: "SAML_SIGNATURE_INVALID",
    OneLogin_Saml2_ValidationError.DEPRECATED_SIGNATURE_METHOD: "SAML_WEAK_ALGORITHM",
    OneLogin_Saml2_ValidationError.DEPRECATED_DIGEST_METHOD: "SAML_WEAK_ALGORITHM",
}

BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
#: Largest id an INTEGER column holds on PostgreSQL; a larger one in a URL names nothing.
SIGNATURE_SHORT_NAMES = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": "RSA-SHA256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": "RSA-SHA384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": "RSA-SHA512",
}


@dataclass
class VerifiedAssertion:
    """What a valid response told us, and the pending request it answered (if any)."""

    connection: IdpConnection
    assertion_id: str
    issuer: str
    name_id: str | None
    name_id_format: str | None
    session_index: str | None
    attributes: dict[str, list[str]]
    audiences: list[str]
    #: ``response`` and/or ``assertion``.
    signed_elements: list[str]
    signature_algorithms: list[str]
    #: Replay-cache expiry: the latest moment the assertion could still have been accepted.
    not_on_or_after: dt.datetime
    #: The AuthnRequest this answers; None for an IdP-initiated response.
    request_id: str | None = None
    #: The app the sign-in is for, where to go afterwards, and why it was started.
    app: str = "portal"
    next_path: str | None = None
    purpose: str = "login"
    #: SHA-256 of the binding cookie the AuthnRequest was started with (None: IdP-initiated).
    #: A web sign-in whose cross-site POST came without that cookie (SameSite=Lax on http, or a
    #: browser that drops SameSite=None cookies) checks it at its same-site finishing request.
    request_binding_hash: str | None = None


#: Where a snapshot keeps its settings: (first certificate, BASE_URL) -> settings.
_SNAPSHOT_SETTINGS = "_portal_snapshot_settings"
#: Built settings per connection state; building them parses and checks every certificate.
_SETTINGS_CACHE: dict[tuple, OneLogin_Saml2_Settings] = {}
_SETTINGS_CACHE_SIZE = 512


def saml_settings(connection: IdpConnection, *, first_cert: int = 0) -> OneLogin_Saml2_Settings:
    """python3-saml settings for one connection (cached until anything in them changes).

    ``first_cert`` puts that signing certificate first in the list the library tries in turn:
    the same certificates are trusted, but the one that signed a response is tried first.
    A read-only snapshot (``connection_snapshot``) never changes, so its settings are also kept on
    it: the key below is not rebuilt for every sign-in.
    """
    on_snapshot: dict[tuple, OneLogin_Saml2_Settings] | None = connection.__dict__.get(_SNAPSHOT_SETTINGS)
    base_url = current_app.config["BASE_URL"]
    if on_snapshot is not None and (found := on_snapshot.get((first_cert, base_url))) is not None:
        return found
    key = (
        first_cert,
        connection.id,
        connection.updated_at,
        connection.plugin_key,
        connection.idp_entity_id,
        connection.idp_sso_url,
        json.dumps(connection.settings or {}, sort_keys=True),
        tuple(cert.fingerprint_sha256 for cert in connection.certificates),
        hashlib.sha256(connection.sp_certificate.encode()).hexdigest(),
        base_url,
    )
    settings = _SETTINGS_CACHE.get(key)
    if settings is None:
        if len(_SETTINGS_CACHE) >= _SETTINGS_CACHE_SIZE:
            _SETTINGS_CACHE.clear()
        settings = _SETTINGS_CACHE[key] = _build_settings(connection, first_cert)
    if on_snapshot is not None:
        on_snapshot[(first_cert, base_url)] = settings
    return settings


def _build_settings(connection: IdpConnection, first_cert: int = 0) -> OneLogin_Saml2_Settings:
    """python3-saml settings for one connection, strict, SHA-256 only."""
    values = sp_values(connection)
    options = resolve_options(connection)
    signed = options.signed_element
    certs = [pem_body(cert.pem) for cert in connection.certificates]
    signing = certs[first_cert : first_cert + 1] + certs[:first_cert] + certs[first_cert + 1 :]
    idp: dict = {
        "entityId": connection.idp_entity_id,
        "singleSignOnService": {
            "url": connection.idp_sso_url,
            "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
        },
        "x509certMulti": {"signing": signing or [""], "encryption": certs[:1] or [""]},
    }
    settings = {
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": values.sp_entity_id,
            "assertionConsumerService": {
                "url": values.acs_url,
                "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
            },
            "NameIDFormat": options.nameid_format,
            "x509cert": pem_body(connection.sp_certificate),
            # Decrypted here only; saml_settings caches the result per connection state.
            "privateKey": connection.sp_private_key_pem(),
        },
        "idp": idp,
        "security": {
            "authnRequestsSigned": options.sign_requests,
            "wantMessagesSigned": signed in ("response", "both"),
            "wantAssertionsSigned": signed in ("assertion", "both"),
            "wantAssertionsEncrypted": options.encrypt_assertions == "require",
            "wantNameId": False,
            "wantNameIdEncrypted": False,
            "wantAttributeStatement": False,
            "requestedAuthnContext": False,
            "rejectDeprecatedAlgorithm": True,
            "rejectUnsolicitedResponsesWithInResponseTo": True,
            "signatureAlgorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "digestAlgorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
            "allowRepeatAttributeName": True,
        },
    }
    return OneLogin_Saml2_Settings(settings, sp_validation_only=True)


def binding_hash(value: str) -> str:
    """Hash of the browser-binding cookie value, as stored on pending requests."""
    return hashlib.sha256(value.encode()).hexdigest()


def start_login(
    connection: IdpConnection,
    *,
    app_name: str,
    next_path: str,
    browser_binding: str,
    purpose: str = "login",
) -> str:
    """Record a pending AuthnRequest and return the IdP URL to redirect the browser to.

    The caller commits. ``browser_binding`` is the random value of this browser's binding cookie:
    the response is accepted only from the browser that started the sign-in.
    """
    if urlsplit(connection.idp_sso_url).scheme.lower() not in ("https", "http"):
        # Rows stored before metadata URLs were checked may hold a javascript: or data: URL.
        raise SignInError(
            "IDP_SSO_URL_INVALID", f"the connection's SSO URL {connection.idp_sso_url[:80]!r} is not http(s)"
        )
    settings = saml_settings(connection)
    authn_request = OneLogin_Saml2_Authn_Request(settings, force_authn=purpose == "test")
    request_id = authn_request.get_id()
    now = utcnow()
    db.session.add(
        PendingRequest(
            id=request_id,
            connection_id=connection.id,
            app=app_name,
            next_path=next_path,
            browser_binding_hash=binding_hash(browser_binding),
            purpose=purpose,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=current_app.config["SAML_PENDING_REQUEST_SECONDS"]),
        )
    )
    if resolve_options(connection).sign_requests:
        return signed_redirect(
            connection.idp_sso_url, "SAMLRequest", authn_request.get_xml().encode(), settings.get_sp_key()
        )
    parameters = {"SAMLRequest": authn_request.get_request()}
    return OneLogin_Saml2_Utils.redirect(connection.idp_sso_url, parameters)


def sp_metadata_xml(connection: IdpConnection) -> str:
    """The SP metadata document for ``connection`` (entity ID, ACS, signing certificate, and the
    Single Logout service when it is on)."""
    settings = saml_settings(connection)
    sp = settings.get_sp_data()
    metadata = OneLogin_Saml2_Metadata.builder(
        sp,
        authnsign=resolve_options(connection).sign_requests,
        wsign=True,
        valid_until=None,
        cache_duration=None,
    )
    metadata = OneLogin_Saml2_Metadata.add_x509_key_descriptors(metadata, sp["x509cert"], add_encryption=False)
    metadata = metadata if isinstance(metadata, str) else metadata.decode()
    options = resolve_options(connection)
    if options.encrypt_assertions != "off":
        certificates = [pem_body(key.certificate) for key in active_encryption_keys(connection)]
        metadata = add_encryption_keys(metadata, certificates, ADVERTISED_ALGORITHMS)
    if options.single_logout:
        metadata = add_logout_services(metadata, sp_values(connection).sls_url)
    return metadata


#: The connection's certificates come with it, in one query (the option is built once).
_WITH_CERTIFICATES = (joinedload(IdpConnection.certificates),)

_CONNECTION_COLUMNS = [(attr.key, attr.columns[0]) for attr in sa_inspect(IdpConnection).column_attrs]
_CERTIFICATE_COLUMNS = [(attr.key, attr.columns[0]) for attr in sa_inspect(IdpCertificate).column_attrs]
_CONNECTIONS, _CERTIFICATES = cast(Table, IdpConnection.__table__), cast(Table, IdpCertificate.__table__)
_PENDING_TABLE = cast(Table, PendingRequest.__table__)


class PendingValues(NamedTuple):
    """A pending request as a plain value: the columns of ``PendingRequest``, in table order."""

    id: str
    connection_id: int
    app: str
    next_path: str
    browser_binding_hash: str
    purpose: str
    created_at: dt.datetime
    expires_at: dt.datetime


#: A connection and its certificates (oldest first, as the relationship orders them), one row each.
_SELECT_CONNECTION = (
    select(*(column for _key, column in _CONNECTION_COLUMNS), *(column for _key, column in _CERTIFICATE_COLUMNS))
    .select_from(_CONNECTIONS.outerjoin(_CERTIFICATES))
    .where(_CONNECTIONS.c.id == bindparam("connection_id"))
    .order_by(_CERTIFICATES.c.id)
)
#: The same, with the pending request a response names beside it on every row (one round trip
#: instead of two for every SP-initiated sign-in).
_SELECT_CONNECTION_AND_PENDING = (
    select(
        *(column for _key, column in _CONNECTION_COLUMNS),
        *(column for _key, column in _CERTIFICATE_COLUMNS),
        *_PENDING_TABLE.c,
    )
    .select_from(
        _CONNECTIONS.outerjoin(_CERTIFICATES).outerjoin(_PENDING_TABLE, _PENDING_TABLE.c.id == bindparam("request_id"))
    )
    .where(_CONNECTIONS.c.id == bindparam("connection_id"))
    .order_by(_CERTIFICATES.c.id)
)
#: connection id -> (the rows it was built from, the read-only copy).
_SNAPSHOTS: dict[int, tuple[tuple, IdpConnection]] = {}


def connection_snapshot(connection_id: int) -> IdpConnection | None:
    """A read-only copy of the connection as the database holds it now, certificates included.

    Read with one plain query on every call, so that a change (a certificate removed, the
    connection disabled) counts at once; the ORM objects are built again only when those rows
    changed, which spares every sign-in the ORM's loading. The copy belongs to no database
    session: only read it (whatever changes a connection loads it with ``db.session.get``).
    """
    rows, _count = driver.execute(_SELECT_CONNECTION, {"connection_id": connection_id})
    return _snapshot(connection_id, rows)


def _snapshot_and_pending(
    connection_id: int, request_id: str | None
) -> tuple[IdpConnection | None, PendingValues | None]:
    """``connection_snapshot`` and the pending request ``request_id`` (whichever connection it
    belongs to: the caller checks), read in one query."""
    if request_id is None:
        return connection_snapshot(connection_id), None
    rows, _count = driver.execute(
        _SELECT_CONNECTION_AND_PENDING, {"connection_id": connection_id, "request_id": request_id}
    )
    start = len(_CONNECTION_COLUMNS) + len(_CERTIFICATE_COLUMNS)
    pending = PendingValues(*rows[0][start:]) if rows and rows[0][start] is not None else None
    return _snapshot(connection_id, rows, start), pending


def _snapshot(connection_id: int, rows: Any, end: int | None = None) -> IdpConnection | None:
    """The cached copy when the connection's rows are those it was built from, else a new one.

    The rows are compared as they are (a JSON column compares as the dict it holds): nothing to
    serialise on the path every sign-in takes."""
    if not rows:
        return None
    width = len(_CONNECTION_COLUMNS)
    key = (
        tuple(rows[0][:width]),
        tuple(tuple(row[width:end]) for row in rows if row[width] is not None),
    )
    cached = _SNAPSHOTS.get(connection_id)
    if cached is not None and cached[0] == key:
        return cached[1]
    snapshot = IdpConnection(**{name: rows[0][index] for index, (name, _column) in enumerate(_CONNECTION_COLUMNS)})
    snapshot.certificates = [
        IdpCertificate(**{name: row[width + index] for index, (name, _column) in enumerate(_CERTIFICATE_COLUMNS)})
        for row in rows
        if row[width] is not None
    ]
    if len(_SNAPSHOTS) >= _SETTINGS_CACHE_SIZE:
        _SNAPSHOTS.clear()
    snapshot.__dict__[_SNAPSHOT_SETTINGS] = {}
    _SNAPSHOTS[connection_id] = (key, snapshot)
    return snapshot


#: Built once: the statements of every sign-in (SQLAlchemy then reuses their compiled form).
_DELETE_PENDING = delete(_PENDING_TABLE).where(_PENDING_TABLE.c.id == bindparam("id"))
_USED_ASSERTIONS = cast(Table, UsedAssertion.__table__)
_INSERT_USED_ASSERTION = insert(_USED_ASSERTIONS)
#: PostgreSQL: consume the pending request and record the assertion in one statement (one round
#: trip instead of two). No row back: the pending request was already consumed (nothing inserted).
_CONSUME_AND_REMEMBER = text(
    "WITH consumed AS (DELETE FROM pending_requests WHERE id = :id RETURNING id) "
    "INSERT INTO used_assertions (connection_id, assertion_id, expires_at) "
    "SELECT :connection_id, :assertion_id, :expires_at FROM consumed "
    "RETURNING assertion_id"
).bindparams(
    bindparam("id", type_=_PENDING_TABLE.c.id.type),
    bindparam("connection_id", type_=_USED_ASSERTIONS.c.connection_id.type),
    bindparam("assertion_id", type_=_USED_ASSERTIONS.c.assertion_id.type),
    bindparam("expires_at", type_=_USED_ASSERTIONS.c.expires_at.type),
)


def _check_pending(
    connection: IdpConnection, pending: PendingValues | None, browser_binding: str | None
) -> PendingValues:
    """The pending request a response answers, checked against the browser's binding cookie.

    A binding cookie that arrived must match. Only a web sign-in (purpose ``login``) may arrive
    without one: it finishes on a same-site request, which checks the binding there
    (``VerifiedAssertion.request_binding_hash``). Test and app sign-ins finish here, so they
    need the cookie here.
    """
    if pending is None or pending.connection_id != connection.id or pending.purpose == "logout":
        raise SignInError("SAML_IN_RESPONSE_TO_MISMATCH", "InResponseTo names no pending request of this connection")
    if pending.expires_at <= utcnow():
        raise SignInError("SAML_IN_RESPONSE_TO_MISMATCH", "the pending request has expired")
    if browser_binding is None and pending.purpose == "login":
        return pending
    if not browser_binding or not secrets.compare_digest(pending.browser_binding_hash, binding_hash(browser_binding)):
        raise SignInError("SAML_IN_RESPONSE_TO_MISMATCH", "the response arrived in another browser than the request")
    return pending


#: The one form IdPs send (xs:dateTime in UTC), read without strptime; anything else goes to
#: the library's parser.
_SAML_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?Z")


def _parse_time(value: str | None) -> dt.datetime | None:
    """A SAML timestamp as a naive UTC datetime, to the second (as the library reads it)."""
    if not value:
        return None
    match = _SAML_TIME.fullmatch(value)
    if match:
        try:
            year, month, day, hour, minute, second = map(int, match.groups())
            return dt.datetime(year, month, day, hour, minute, second)
        except ValueError:
            pass  # a leap second, say: the library decides
    try:
        return dt.datetime.fromtimestamp(OneLogin_Saml2_Utils.parse_SAML_to_time(value), dt.UTC).replace(tzinfo=None)
    except Exception:  # noqa: BLE001 - the library raises a bare Exception for an unknown format
        raise SignInError("SAML_MALFORMED", f"bad timestamp {value!r}") from None


def _check_envelope_and_subject(
    root: etree._Element,
    document: etree._Element,
    connection: IdpConnection,
    pending: PendingValues | None,
    signed_elements: list[str],
) -> dt.datetime:
    """Our checks on top of the library's; returns the latest time the assertion is valid."""
    values = sp_values(connection)
    skew = dt.timedelta(seconds=current_app.config["SAML_CLOCK_SKEW_SECONDS"])
    now = utcnow()

    destination = root.get("Destination")
    if destination is None and "response" in signed_elements:
        raise SignInError("SAML_DESTINATION_MISSING", "a signed Response must carry a Destination")
    if destination is not None and destination != values.acs_url:
        raise SignInError("SAML_DESTINATION_MISMATCH", f"Destination {destination!r}, expected {values.acs_url!r}")

    assertion = document.find("saml:Assertion", NS)
    if assertion is None:
        raise SignInError("SAML_INVALID", "no Assertion")

    restrictions = assertion.findall("saml:Conditions/saml:AudienceRestriction", NS)
    if not restrictions:
        raise SignInError("SAML_AUDIENCE_MISSING", "the assertion has no AudienceRestriction")
    for restriction in restrictions:
        audiences = [(node.text or "").strip() for node in restriction.findall("saml:Audience", NS)]
        if values.sp_entity_id not in audiences:
            raise SignInError("SAML_AUDIENCE_MISMATCH", f"audience {audiences}, expected {values.sp_entity_id!r}")

    conditions = assertion.find("saml:Conditions", NS)
    not_before = _parse_time(conditions.get("NotBefore")) if conditions is not None else None
    conditions_end = _parse_time(conditions.get("NotOnOrAfter")) if conditions is not None else None
    if not_before and not_before > now + skew:
        raise SignInError("SAML_NOT_YET_VALID", f"NotBefore {not_before.isoformat()} is in the future")
    if conditions_end and conditions_end + skew <= now:
        raise SignInError("SAML_EXPIRED", f"NotOnOrAfter {conditions_end.isoformat()} has passed")

    confirmations = [
        data
        for node in assertion.findall("saml:Subject/saml:SubjectConfirmation", NS)
        if node.get("Method") == BEARER and (data := node.find("saml:SubjectConfirmationData", NS)) is not None
    ]
    if not confirmations:
        raise SignInError("SAML_RECIPIENT_MISMATCH", "no bearer SubjectConfirmationData")
    expected_irt = pending.id if pending else None
    latest = conditions_end or now
    accepted = False
    for data in confirmations:
        if data.get("Recipient") != values.acs_url:
            continue
        if data.get("InResponseTo") != expected_irt:
            continue
        scd_end = _parse_time(data.get("NotOnOrAfter"))
        if scd_end is None or scd_end + skew <= now:
            continue
        latest = max(latest, scd_end)
        accepted = True
    if not accepted:
        recipients = [data.get("Recipient") for data in confirmations]
        irts = [data.get("InResponseTo") for data in confirmations]
        if values.acs_url not in recipients:
            raise SignInError("SAML_RECIPIENT_MISMATCH", f"Recipient {recipients}, expected {values.acs_url!r}")
        if expected_irt not in irts:
            raise SignInError(
                "SAML_IN_RESPONSE_TO_MISMATCH",
                f"signed SubjectConfirmationData InResponseTo {irts}, expected {expected_irt!r}",
            )
        raise SignInError("SAML_EXPIRED", "the SubjectConfirmationData has expired")
    return latest + skew


def _text(node: etree._Element | None) -> str | None:
    """All text of ``node`` with comments left out but their tails kept.

    ``node.text`` stops at the first comment: ``admin@acme.example<!---->.evil.test`` would read
    as ``admin@acme.example`` (CVE-2017-11427). The signature does not cover comments either.
    """
    if node is None:
        return None
    return "".join(str(text) for text in node.itertext()).strip()


def _read_assertion(
    connection: IdpConnection,
    document: etree._Element,
    signed_elements: list[str],
    algorithms: list[str],
    valid_until: dt.datetime,
) -> VerifiedAssertion:
    """Read the facts of the one (validated) assertion straight from the tree.

    The library has already checked that the document holds exactly one assertion and that it,
    or the whole response, is covered by a verified signature.
    """
    assertion = document.find("saml:Assertion", NS)
    if assertion is None:  # the library refuses this before, but say so rather than crash
        raise SignInError("SAML_INVALID", "no Assertion in a response the library accepted")
    name_id = assertion.find("saml:Subject/saml:NameID", NS)
    statement = assertion.find("saml:AuthnStatement", NS)
    attributes: dict[str, list[str]] = {}
    for attribute in assertion.findall("saml:AttributeStatement/saml:Attribute", NS):
        values = [_text(value) or "" for value in attribute.findall("saml:AttributeValue", NS)]
        attributes.setdefault(attribute.get("Name", ""), []).extend(values)
    return VerifiedAssertion(
        connection=connection,
        assertion_id=assertion.get("ID", ""),
        issuer=_text(assertion.find("saml:Issuer", NS)) or "",
        name_id=_text(name_id) or None,
        name_id_format=name_id.get("Format") if name_id is not None else None,
        session_index=statement.get("SessionIndex") if statement is not None else None,
        attributes=attributes,
        audiences=[
            _text(node) or ""
            for node in assertion.findall("saml:Conditions/saml:AudienceRestriction/saml:Audience", NS)
        ],
        signed_elements=signed_elements,
        signature_algorithms=algorithms,
        not_on_or_after=valid_until,
    )


def _signature_facts(document: etree._Element) -> tuple[list[str], list[str]]:
    elements: list[str] = []
    algorithms: list[str] = []
    for signature in document.findall(".//ds:Signature", NS):
        parent = signature.getparent()
        elements.append("response" if parent is not None and parent.tag.endswith("}Response") else "assertion")
        method = signature.find("ds:SignedInfo/ds:SignatureMethod", NS)
        uri = (method.get("Algorithm") if method is not None else None) or ""
        algorithms.append(SIGNATURE_SHORT_NAMES.get(uri, uri))
    return elements, algorithms


def consume_response(
    connection_id: int, saml_response: str | None, *, browser_binding: str | None
) -> VerifiedAssertion:
    """Validate a posted SAMLResponse for ``connection_id``; raise ``SignInError`` on any refusal.

    On success the pending request is deleted and the assertion ID inserted in the replay cache
    (flushed, not committed): the caller commits them together with what the sign-in produced
    (a sign-in result, an app code, a test result), and commits them even when it then refuses,
    so that the same response never signs anyone in twice, in any worker. A refusal raised here
    has already committed the consumption of the pending request.
    """
    if connection_id > MAX_ID:
        raise SignInError("CONNECTION_NOT_FOUND", f"no connection {connection_id}")
    try:
        if not saml_response:
            raise SignInError("SAML_MALFORMED", "no SAMLResponse field in the POST", connection_id=connection_id)
        raw, root = decode_saml_response(saml_response)
    except SignInError:
        if connection_snapshot(connection_id) is None:  # an unknown connection is the first thing to say
            raise SignInError("CONNECTION_NOT_FOUND", f"no connection {connection_id}") from None
        raise

    in_response_to = root.get("InResponseTo")
    connection, found = _snapshot_and_pending(connection_id, in_response_to or None)
    if connection is None:
        raise SignInError("CONNECTION_NOT_FOUND", f"no connection {connection_id}")
    pending = _check_pending(connection, found, browser_binding) if in_response_to else None
    if pending is not None and pending.purpose != "login":
        # A test or app sign-in records what it learnt on the connection: the session's own copy.
        connection = db.session.get(IdpConnection, connection_id, options=_WITH_CERTIFICATES)
        if connection is None:  # deleted since the line above
            raise SignInError("CONNECTION_NOT_FOUND", f"no connection {connection_id}")
    if pending is None and not connection.allow_idp_initiated:
        raise SignInError("SAML_UNSOLICITED", "IdP-initiated sign-in is off for this connection")
    is_test = pending is not None and pending.purpose == "test"
    if connection.status != ENABLED and not is_test:
        raise SignInError("CONNECTION_DISABLED", f"connection status is {connection.status}")

    try:
        check_signatures(root)
        return _validate(connection, saml_response, raw, root, pending)
    except SignInError as err:
        if err.code == "SAML_SIGNATURE_INVALID":
            err.context.setdefault("signed_with", ", ".join(claimed_signers(root)))
        if pending is not None:
            err.context["purpose"] = pending.purpose
            _consume_pending(pending)
            db.session.commit()
        raise


#: A response names at most this many certificates worth reporting (one per signature).
_MOST_SIGNERS = 3


def claimed_signers(root: etree._Element) -> list[str]:
    """SHA-256 fingerprints of the certificates the response's signatures name in their KeyInfo.

    For the admin's diagnosis of a signature failure only ("signed by X; we trust Y"): anyone can
    put any certificate there, so it is never used to verify anything. Unreadable ones are skipped.
    """
    found: list[str] = []
    for node in root.iterfind(".//ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS):
        try:
            fingerprint = certificate_info(normalise_certificate(node.text or "")).fingerprint_sha256
        except ValueError:
            continue
        if fingerprint not in found:
            found.append(fingerprint)
        if len(found) == _MOST_SIGNERS:
            break
    return found


def _signer_first(connection: IdpConnection, root: etree._Element) -> int:
    """Which of the connection's certificates to try first: the one the response's first signature
    names in its KeyInfo, when it is one of them (0 otherwise).

    python3-saml tries the trusted certificates in turn, so during a rollover with several, a
    response signed by the last one would cost a failed verification per certificate before it.
    The KeyInfo is only a hint for the order: trust still comes from the connection's list.
    """
    certificates = connection.certificates
    if len(certificates) < 2:
        return 0
    named = root.find(".//ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)
    if named is None or not named.text:
        return 0
    body = "".join(named.text.split())
    return next((index for index, cert in enumerate(certificates) if pem_body(cert.pem) == body), 0)


def _consume_pending(pending: PendingValues) -> bool:
    """Delete the pending request; False when another worker already did (single use)."""
    result = db.session.execute(_DELETE_PENDING, {"id": pending.id})
    return cast(CursorResult[Any], result).rowcount == 1


class _ParsedResponse(OneLogin_Saml2_Response):
    """python3-saml's Response over the tree ``decode_saml_response`` parsed with the library's
    own parser: its constructor would decode and parse the same bytes a second time. Only for a
    response without an EncryptedAssertion (the constructor would decrypt one; those go through
    ``open_encrypted_response``)."""

    def __init__(self, settings: OneLogin_Saml2_Settings, raw: bytes, document: etree._Element) -> None:
        # What the library's constructor sets, from the same bytes and the same parse.
        self._settings = settings
        self._error = None
        self.response = raw
        self.document = document
        self.decrypted_document = None
        self.encrypted = None
        self.valid_scd_not_on_or_after = None


def _validate(
    connection: IdpConnection, saml_response: str, raw: bytes, root: etree._Element, pending: PendingValues | None
) -> VerifiedAssertion:
    values = sp_values(connection)
    try:
        settings = saml_settings(connection, first_cert=_signer_first(connection, root))
        if is_encrypted(root, connection):
            response = open_encrypted_response(connection, settings, saml_response, root)
        else:
            response = _ParsedResponse(settings, raw, root)
        response.is_valid(
            request_data_for(values.acs_url, {"SAMLResponse": saml_response}),
            request_id=pending.id if pending else None,
            raise_exceptions=True,
        )
    except OneLogin_Saml2_ValidationError as exc:
        raise SignInError(_LIBRARY_CODES.get(exc.code, "SAML_INVALID"), str(exc)) from None
    except SignInError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse/crypto failure is a refusal, never a 500
        log.info("SAML response refused by the library: %s", type(exc).__name__)
        raise SignInError("SAML_INVALID", f"{type(exc).__name__}: {exc}") from None

    document = response.decrypted_document if response.encrypted else response.document
    # With "any" the library requires some signature; this makes sure it is one over the assertion.
    check_assertion_covered(document)
    signed_elements, algorithms = _signature_facts(document)
    valid_until = _check_envelope_and_subject(root, document, connection, pending, signed_elements)
    verified = _read_assertion(connection, document, signed_elements, algorithms, valid_until)
    if pending is not None:
        verified.request_id = pending.id
        verified.app, verified.next_path, verified.purpose = pending.app, pending.next_path, pending.purpose
        verified.request_binding_hash = pending.browser_binding_hash
    _remember(verified, pending)
    return verified


def _remember(verified: VerifiedAssertion, pending: PendingValues | None) -> None:
    """Consume the pending request and record the assertion ID (flushed; the caller commits).

    The unique key on the replay cache decides between two workers holding the same response:
    the second one's insert waits for the first transaction and then fails. The pending
    request's delete decides the same way between two responses to one request.
    """
    values = {
        "connection_id": verified.connection.id,
        "assertion_id": verified.assertion_id,
        "expires_at": verified.not_on_or_after,
    }
    try:
        if pending is not None and db.session.get_bind().dialect.name == "postgresql":
            if not driver.execute(_CONSUME_AND_REMEMBER, {"id": pending.id, **values})[0]:
                db.session.rollback()
                raise SignInError("SAML_REPLAY", "the AuthnRequest was already answered")
            return
        if pending is not None and not _consume_pending(pending):
            db.session.rollback()
            raise SignInError("SAML_REPLAY", "the AuthnRequest was already answered")
        db.session.execute(_INSERT_USED_ASSERTION, values)
    except IntegrityError:
        db.session.rollback()
        raise SignInError("SAML_REPLAY", f"assertion {verified.assertion_id} was already used") from None
