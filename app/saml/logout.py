"""Single Logout: read, check and answer LogoutRequests and LogoutResponses, and send our own.

python3-saml reads logout messages in the HTTP-Redirect binding only, and checks neither their
freshness nor their replay. So this module parses them itself, with the hardened parser of the
sign-in path, verifies signatures with xmlsec (the query-string signature of the Redirect binding,
the enveloped XML signature of the POST binding), and adds what a logout must also prove: the
exact Destination, the connection's IdP as Issuer, an IssueInstant within the skew, NotOnOrAfter,
and a message ID seen once per connection (the ``used_assertions`` replay cache, so that every
worker refuses a replay at once). A LogoutResponse must answer a LogoutRequest this browser sent
(a ``pending_requests`` row with purpose ``logout``), once.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import secrets
import zlib
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl

import xmlsec
from flask import current_app
from lxml import etree
from onelogin.saml2.errors import OneLogin_Saml2_Error
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from sqlalchemy import CursorResult, delete
from sqlalchemy.exc import IntegrityError

from app.errors import LogoutError, SignInError
from app.extensions import db
from app.models import MAX_ID, IdpConnection, PendingRequest, UsedAssertion
from app.saml.core import binding_hash, saml_settings
from app.saml.options import resolve_options
from app.saml.redirect_binding import signed_redirect
from app.saml.sp_metadata import POST_BINDING, REDIRECT_BINDING
from app.saml.urls import sp_values
from app.saml.xmlguard import NS, STRONG_SIGNATURES, check_signatures, parse_xml_safely
from app.timeutil import utcnow

log = logging.getLogger(__name__)

SAMLP = NS["samlp"]
SAML = NS["saml"]
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
#: Second-level status under Success when the request named no session we had (already ended).
STATUS_PARTIAL_LOGOUT = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
#: Pending logout requests carry this purpose (the ACS refuses to answer them with a sign-in).
LOGOUT_PURPOSE = "logout"
#: A logout message older than this (plus the clock skew) is stale, whatever its NotOnOrAfter.
MESSAGE_MAX_AGE = dt.timedelta(minutes=5)
#: The inflated size a Redirect-binding message may reach (a deflate bomb stops here).
MAX_INFLATED_BYTES = 256 * 1024
#: Replay-cache keys are prefixed so that a logout message ID never collides with an assertion ID.
_REPLAY_PREFIX = "logout:"

_SIG_TRANSFORMS = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": xmlsec.constants.TransformRsaSha256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": xmlsec.constants.TransformRsaSha384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": xmlsec.constants.TransformRsaSha512,
}


@dataclass
class IdpLogoutRequest:
    """A checked LogoutRequest from the connection's IdP: whose sessions to end."""

    connection: IdpConnection
    request_id: str
    name_id: str
    #: Empty: every session of that NameID through this connection.
    session_indexes: list[str]
    relay_state: str | None
    binding: str


@dataclass
class IdpLogoutResponse:
    """A checked LogoutResponse answering the LogoutRequest this browser sent."""

    connection: IdpConnection
    in_response_to: str
    status: str
    relay_state: str | None
    binding: str
    sub_status: str | None = None

    @property
    def success(self) -> bool:
        return self.status == STATUS_SUCCESS


@dataclass
class _Received:
    """A message as it arrived, before any check."""

    kind: str  # "SAMLRequest" or "SAMLResponse"
    binding: str
    value: str
    relay_state: str | None
    sig_alg: str | None = None
    signature: str | None = None
    #: The octets the Redirect-binding signature covers, taken from the raw query string.
    signed_query: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# --- receiving ---------------------------------------------------------------------------------


def _single(pairs: list[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in pairs if key == name]
    if len(values) > 1:
        raise LogoutError("SLO_MALFORMED", f"{name} appears {len(values)} times")
    return values[0] if values else None


def _received(method: str, query_string: str, form: dict[str, list[str]]) -> _Received:
    """Which message arrived, in which binding (GET: Redirect, POST: POST)."""
    if method == "GET":
        pairs = parse_qsl(query_string, keep_blank_values=True)
        binding = REDIRECT_BINDING
    else:
        pairs = [(key, value) for key, values in form.items() for value in values]
        binding = POST_BINDING
    request_value, response_value = _single(pairs, "SAMLRequest"), _single(pairs, "SAMLResponse")
    if bool(request_value) == bool(response_value):
        raise LogoutError("SLO_MALFORMED", "expected exactly one of SAMLRequest and SAMLResponse")
    kind = "SAMLRequest" if request_value else "SAMLResponse"
    received = _Received(
        kind=kind,
        binding=binding,
        value=cast(str, request_value or response_value),
        relay_state=_single(pairs, "RelayState"),
    )
    if binding == REDIRECT_BINDING:
        received.sig_alg = _single(pairs, "SigAlg")
        received.signature = _single(pairs, "Signature")
        # The signature covers the parameters exactly as they were encoded in the URL, in this
        # order (SAML bindings 3.4.4.1), so the octets are taken from the raw query string.
        raw_parts = query_string.split("&")
        received.signed_query = "&".join(
            part for name in (kind, "RelayState", "SigAlg") for part in raw_parts if part.startswith(f"{name}=")
        )
    return received


def _decode(received: _Received) -> etree._Element:
    """Base64 (and, in the Redirect binding, raw DEFLATE) decode, then parse safely."""
    try:
        data = base64.b64decode("".join(received.value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise LogoutError("SLO_MALFORMED", f"{received.kind} is not valid base64") from None
    if received.binding == REDIRECT_BINDING:
        inflater = zlib.decompressobj(-15)
        try:
            data = inflater.decompress(data, MAX_INFLATED_BYTES + 1)
        except zlib.error:
            raise LogoutError("SLO_MALFORMED", f"{received.kind} is not DEFLATE-compressed") from None
        if len(data) > MAX_INFLATED_BYTES or inflater.unconsumed_tail:
            raise LogoutError("SAML_TOO_LARGE", f"{received.kind} inflates to over {MAX_INFLATED_BYTES} bytes")
    try:
        root = parse_xml_safely(data, what="logout message")
    except ValueError as exc:
        raise LogoutError("SAML_DOCTYPE" if "DOCTYPE" in str(exc) else "SLO_MALFORMED", str(exc)) from None
    expected = f"{{{SAMLP}}}LogoutRequest" if received.kind == "SAMLRequest" else f"{{{SAMLP}}}LogoutResponse"
    if root.tag != expected:
        raise LogoutError("SLO_MALFORMED", f"{received.kind} holds {root.tag}, not {expected}")
    return root


def _idp_certificates(connection: IdpConnection) -> list[str]:
    return [cert.pem for cert in connection.certificates]


def _verify_query_signature(received: _Received, connection: IdpConnection) -> None:
    """The Redirect binding's signature over ``SAMLRequest|SAMLResponse, RelayState, SigAlg``."""
    if not received.signature or not received.sig_alg:
        raise LogoutError("SLO_UNSIGNED", "the Redirect-binding message carries no Signature/SigAlg")
    transform = _SIG_TRANSFORMS.get(received.sig_alg)
    if transform is None or received.sig_alg not in STRONG_SIGNATURES:
        raise LogoutError("SAML_WEAK_ALGORITHM", f"SigAlg {received.sig_alg} refused")
    try:
        signature = base64.b64decode(received.signature, validate=True)
    except (binascii.Error, ValueError):
        raise LogoutError("SLO_SIGNATURE_INVALID", "Signature is not valid base64") from None
    signed = (received.signed_query or "").encode()
    for pem in _idp_certificates(connection):
        context = xmlsec.SignatureContext()
        context.key = xmlsec.Key.from_memory(pem.encode(), xmlsec.constants.KeyDataFormatCertPem)
        try:
            context.verify_binary(signed, transform, signature)
            return
        except xmlsec.Error:
            continue
    raise LogoutError("SLO_SIGNATURE_INVALID", "the query signature matches no certificate of this connection")


def _verify_xml_signature(root: etree._Element, connection: IdpConnection) -> None:
    """The POST binding's enveloped signature on the message itself (and nowhere else)."""
    signature = root.find("ds:Signature", NS)
    if signature is None:
        raise LogoutError("SLO_UNSIGNED", "the POST-binding message carries no XML signature")
    try:
        check_signatures(root, allowed_parents=frozenset({root.tag}), most=1)
    except SignInError as err:
        code = err.code if err.code in ("SAML_WEAK_ALGORITHM", "SAML_FORBIDDEN_TRANSFORM") else "SLO_SIGNATURE_INVALID"
        raise LogoutError(code, err.detail) from None
    message_id = root.get("ID", "")
    reference = signature.find("ds:SignedInfo/ds:Reference", NS)
    if reference is None or reference.get("URI") != f"#{message_id}":
        raise LogoutError("SLO_SIGNATURE_INVALID", "the signature does not cover the message")
    if sum(1 for node in root.iter() if node.get("ID") == message_id) != 1:
        raise LogoutError("SLO_SIGNATURE_INVALID", "the signed ID is not unique")
    for pem in _idp_certificates(connection):
        context = xmlsec.SignatureContext()
        context.register_id(root, "ID")
        context.key = xmlsec.Key.from_memory(pem.encode(), xmlsec.constants.KeyDataFormatCertPem)
        try:
            context.verify(signature)
            return
        except xmlsec.Error:
            continue
    raise LogoutError("SLO_SIGNATURE_INVALID", "the XML signature matches no certificate of this connection")


def _text(node: etree._Element | None) -> str | None:
    """All text of ``node``, comments left out (a comment must not cut a NameID short)."""
    if node is None:
        return None
    return "".join(str(text) for text in node.itertext()).strip()


def _parse_time(value: str | None, what: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return dt.datetime.fromtimestamp(OneLogin_Saml2_Utils.parse_SAML_to_time(value), dt.UTC).replace(tzinfo=None)
    except (ValueError, OneLogin_Saml2_Error):
        raise LogoutError("SLO_MALFORMED", f"bad {what} {value!r}") from None


def _check_envelope(root: etree._Element, connection: IdpConnection) -> dt.datetime:
    """ID, version, Destination and freshness; returns when the replay entry may go."""
    message_id = root.get("ID")
    if not message_id or len(message_id) > 200 or root.get("Version") != "2.0":
        raise LogoutError("SLO_MALFORMED", "missing or oversized ID, or Version is not 2.0")
    expected_destination = sp_values(connection).sls_url
    if root.get("Destination") != expected_destination:
        raise LogoutError(
            "SLO_DESTINATION_MISMATCH", f"Destination {root.get('Destination')!r}, expected {expected_destination!r}"
        )
    skew = dt.timedelta(seconds=current_app.config["SAML_CLOCK_SKEW_SECONDS"])
    now = utcnow()
    issued = _parse_time(root.get("IssueInstant"), "IssueInstant")
    if issued is None:
        raise LogoutError("SLO_MALFORMED", "no IssueInstant")
    if issued > now + skew:
        raise LogoutError("SLO_EXPIRED", f"IssueInstant {issued.isoformat()} is in the future")
    if issued + MESSAGE_MAX_AGE + skew <= now:
        raise LogoutError("SLO_EXPIRED", f"IssueInstant {issued.isoformat()} is too old")
    not_on_or_after = _parse_time(root.get("NotOnOrAfter"), "NotOnOrAfter")
    if not_on_or_after is not None and not_on_or_after + skew <= now:
        raise LogoutError("SLO_EXPIRED", f"NotOnOrAfter {not_on_or_after.isoformat()} has passed")
    return issued + MESSAGE_MAX_AGE + 2 * skew


def _remember_message(connection: IdpConnection, message_id: str, keep_until: dt.datetime) -> None:
    """Record the message ID in the replay cache, in the caller's transaction.

    Flushed now, so that a replay fails here (the primary key is shared by every worker); it is
    committed with the sessions the message ends, so that both happen or neither does.
    """
    db.session.add(
        UsedAssertion(connection_id=connection.id, assertion_id=_REPLAY_PREFIX + message_id, expires_at=keep_until)
    )
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise LogoutError("SLO_REPLAY", f"logout message {message_id} was already used") from None


def _load_connection(connection_id: int) -> IdpConnection:
    connection = db.session.get(IdpConnection, connection_id) if 0 < connection_id <= MAX_ID else None
    if connection is None:
        raise LogoutError("CONNECTION_NOT_FOUND", f"no connection {connection_id}")
    return connection


def receive_logout_message(
    connection_id: int,
    *,
    method: str,
    query_string: str,
    form: dict[str, list[str]],
    browser_binding: str | None,
) -> IdpLogoutRequest | IdpLogoutResponse:
    """Check a message that arrived at ``/saml/<id>/sls``; raise ``LogoutError`` on any refusal.

    On success its ID is in the replay cache (flushed, not committed: the caller commits with
    whatever the message leads to) and, for a LogoutResponse, the pending request is consumed.
    """
    connection = _load_connection(connection_id)
    if not resolve_options(connection).single_logout:
        raise LogoutError("SLO_NOT_ENABLED", "Single Logout is off for this connection")
    received = _received(method, query_string, form)
    root = _decode(received)
    # The Issuer first: a message of another connection's IdP gets the precise refusal.
    issuer = root.find("saml:Issuer", NS)
    issuer_text = _text(issuer)
    if issuer_text != connection.idp_entity_id:
        raise LogoutError("SLO_ISSUER_MISMATCH", f"Issuer {issuer_text!r}, expected {connection.idp_entity_id!r}")
    if received.binding == REDIRECT_BINDING:
        if root.find("ds:Signature", NS) is not None:
            raise LogoutError("SLO_MALFORMED", "the Redirect binding carries its signature in the query, not the XML")
        _verify_query_signature(received, connection)
    else:
        _verify_xml_signature(root, connection)
    keep_until = _check_envelope(root, connection)
    message_id = root.get("ID", "")
    if received.kind == "SAMLRequest":
        name_id = root.find("saml:NameID", NS)
        name_id_text = _text(name_id) or ""
        if not name_id_text:
            raise LogoutError("SLO_MALFORMED", "the LogoutRequest names no NameID (an EncryptedID is not supported)")
        indexes = [_text(node) or "" for node in root.findall("samlp:SessionIndex", NS)]
        _remember_message(connection, message_id, keep_until)
        return IdpLogoutRequest(
            connection=connection,
            request_id=message_id,
            name_id=name_id_text,
            session_indexes=[index for index in indexes if index],
            relay_state=received.relay_state,
            binding=received.binding,
        )
    in_response_to = root.get("InResponseTo") or ""
    _consume_pending_logout(connection, in_response_to, browser_binding)
    _remember_message(connection, message_id, keep_until)
    code = root.find("samlp:Status/samlp:StatusCode", NS)
    sub_code = code.find("samlp:StatusCode", NS) if code is not None else None
    return IdpLogoutResponse(
        connection=connection,
        in_response_to=in_response_to,
        status=(code.get("Value") if code is not None else None) or "",
        sub_status=sub_code.get("Value") if sub_code is not None else None,
        relay_state=received.relay_state,
        binding=received.binding,
    )


def _consume_pending_logout(connection: IdpConnection, request_id: str, browser_binding: str | None) -> None:
    """The LogoutRequest this answers: ours, this connection's, this browser's, fresh; used once."""
    pending = db.session.get(PendingRequest, request_id) if request_id else None
    if pending is None or pending.connection_id != connection.id or pending.purpose != LOGOUT_PURPOSE:
        raise LogoutError("SLO_IN_RESPONSE_TO_MISMATCH", f"InResponseTo {request_id!r} names no logout we sent")
    if pending.expires_at <= utcnow():
        raise LogoutError("SLO_IN_RESPONSE_TO_MISMATCH", "the logout request has expired")
    if not browser_binding or not secrets.compare_digest(pending.browser_binding_hash, binding_hash(browser_binding)):
        raise LogoutError("SLO_IN_RESPONSE_TO_MISMATCH", "the answer arrived in another browser than the request")
    result = db.session.execute(delete(PendingRequest).where(PendingRequest.id == pending.id))
    if cast(CursorResult[Any], result).rowcount != 1:
        raise LogoutError("SLO_REPLAY", "the logout request was already answered")


# --- sending -----------------------------------------------------------------------------------


def _instant(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_id() -> str:
    """A SAML ID: starts with a letter (Entra ID requires it), 160 bits of randomness."""
    return "ONELOGIN_" + secrets.token_hex(20)


def _signed_redirect(connection: IdpConnection, url: str, kind: str, xml: bytes, relay_state: str | None) -> str:
    """``url`` carrying ``xml`` in the HTTP-Redirect binding, signed with the SP key.

    The key comes through the settings so that whatever decrypts the stored key applies here too.
    """
    return signed_redirect(url, kind, xml, saml_settings(connection).get_sp_key(), relay_state)


def logout_response_location(
    connection: IdpConnection, in_response_to: str, *, partial: bool, relay_state: str | None
) -> str | None:
    """Where to send the browser with our signed LogoutResponse; None without an IdP SLO URL."""
    if not connection.idp_slo_url:
        return None
    response = etree.Element(f"{{{SAMLP}}}LogoutResponse", nsmap={"samlp": SAMLP, "saml": SAML})
    response.set("ID", _new_id())
    response.set("Version", "2.0")
    response.set("IssueInstant", _instant(utcnow()))
    response.set("Destination", connection.idp_slo_url)
    response.set("InResponseTo", in_response_to)
    etree.SubElement(response, f"{{{SAML}}}Issuer").text = sp_values(connection).sp_entity_id
    status = etree.SubElement(etree.SubElement(response, f"{{{SAMLP}}}Status"), f"{{{SAMLP}}}StatusCode")
    status.set("Value", STATUS_SUCCESS)
    if partial:
        etree.SubElement(status, f"{{{SAMLP}}}StatusCode").set("Value", STATUS_PARTIAL_LOGOUT)
    return _signed_redirect(connection, connection.idp_slo_url, "SAMLResponse", etree.tostring(response), relay_state)


def start_logout(
    connection: IdpConnection, *, name_id: str, session_index: str | None, browser_binding: str
) -> str | None:
    """Record a pending LogoutRequest and return the IdP URL to send the browser to.

    None when the connection has Single Logout off or no IdP SLO URL. The caller commits.
    """
    options = resolve_options(connection)
    if not options.single_logout or not connection.idp_slo_url:
        return None
    request_id = _new_id()
    now = utcnow()
    logout = etree.Element(f"{{{SAMLP}}}LogoutRequest", nsmap={"samlp": SAMLP, "saml": SAML})
    logout.set("ID", request_id)
    logout.set("Version", "2.0")
    logout.set("IssueInstant", _instant(now))
    logout.set("Destination", connection.idp_slo_url)
    logout.set("NotOnOrAfter", _instant(now + MESSAGE_MAX_AGE))
    etree.SubElement(logout, f"{{{SAML}}}Issuer").text = sp_values(connection).sp_entity_id
    name = etree.SubElement(logout, f"{{{SAML}}}NameID")
    if options.nameid_format != NAMEID_UNSPECIFIED:
        name.set("Format", options.nameid_format)
    name.text = name_id
    if session_index:
        etree.SubElement(logout, f"{{{SAMLP}}}SessionIndex").text = session_index
    db.session.add(
        PendingRequest(
            id=request_id,
            connection_id=connection.id,
            app="portal",
            next_path="/login",
            browser_binding_hash=binding_hash(browser_binding),
            purpose=LOGOUT_PURPOSE,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=current_app.config["SAML_PENDING_REQUEST_SECONDS"]),
        )
    )
    return _signed_redirect(connection, connection.idp_slo_url, "SAMLRequest", etree.tostring(logout), None)
