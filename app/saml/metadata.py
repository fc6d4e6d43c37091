"""Reading IdP metadata: from a file, pasted text or a URL, with errors a person can act on."""

from __future__ import annotations

import http.client
import io
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from app.errors import CodedError
from app.saml.certs import (
    DAMAGED_CERTIFICATE,
    CertificateInfo,
    CertificateUnreadable,
    certificate_info,
    normalise_certificate,
)
from app.saml.xmlguard import parse_xml_safely

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"md": MD, "ds": DS}
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"

#: Largest metadata document we read (real ones are a few kilobytes; federation aggregates are refused).
MAX_METADATA_BYTES = 512 * 1024
#: The whole fetch (name lookup, connect, TLS handshake, headers, body) ends by then.
FETCH_DEADLINE_SECONDS = 10.0
#: What the admin is told whatever went wrong on the network: a refused connection, a time-out and a
#: failed TLS handshake read the same, so the form cannot be used to tell an open port from a closed
#: one. The detail goes to the log.
UNREACHABLE_MESSAGE = (
    "The metadata URL could not be fetched over a working HTTPS connection. Check the URL in a browser, "
    "or download the metadata file and upload it instead."
)

log = logging.getLogger(__name__)


class MetadataError(CodedError):
    """Metadata we cannot use; ``code`` is stable, the message says in plain words what is wrong
    and what to do. ``detail`` keeps what a library said, for the audit event only: such text
    (lxml's parser errors, cryptography's) never reaches a page."""

    def __init__(self, code: str, message: str, detail: str = "") -> None:
        super().__init__(code, message)
        self.detail = detail


@dataclass
class ParsedMetadata:
    """The IdP side of a connection, as read from metadata or typed in."""

    entity_id: str
    sso_url: str
    slo_url: str | None
    certificates: list[CertificateInfo]
    warnings: list[str] = field(default_factory=list)


def _text(value: str | None) -> str:
    return (value or "").strip()


def certificate_warnings(certificates: list[CertificateInfo]) -> list[str]:
    """Warnings an admin should see about these certificates (expiry soon, SHA-1 signed)."""
    warnings = []
    for cert in certificates:
        label = f"Certificate {cert.fingerprint_sha256[:23]}…"
        if cert.state == "expiring":
            warnings.append(f"{label} expires on {cert.not_after:%Y-%m-%d}: add the new one before then.")
        if cert.signature_hash == "sha1":
            warnings.append(f"{label} is itself signed with SHA-1 (the signatures it makes can still be SHA-256).")
    return warnings


#: Where certificates come from, for the sentence about a damaged one.
_DAMAGED_IN_METADATA = (
    "A signing certificate in this metadata is damaged or incomplete. Download the metadata again from "
    "your identity provider and use it without editing it."
)


def read_certificates(pems: list[str], *, pasted: bool = False) -> list[CertificateInfo]:
    """Parse certificates; refuse unreadable, expired and duplicate ones with a clear message.

    ``pasted``: the admin typed or pasted the certificate, so the message names what they pasted
    (a private key, a damaged copy); from metadata, the file itself is to be downloaded again.
    """
    infos: list[CertificateInfo] = []
    for text in pems:
        try:
            info = certificate_info(normalise_certificate(text))
        except CertificateUnreadable as exc:
            message = str(exc) if pasted else _DAMAGED_IN_METADATA
            raise MetadataError("METADATA_BAD_CERTIFICATE", message, detail=exc.detail) from None
        except ValueError as exc:  # a certificate that parses but whose fields do not
            raise MetadataError(
                "METADATA_BAD_CERTIFICATE",
                DAMAGED_CERTIFICATE if pasted else _DAMAGED_IN_METADATA,
                detail=f"{type(exc).__name__}: {exc}",
            ) from None
        if info.is_expired:
            raise MetadataError(
                "METADATA_CERTIFICATE_EXPIRED",
                f"The signing certificate {info.fingerprint_sha256[:23]}… expired on {info.not_after:%Y-%m-%d}. "
                "Create or activate a current certificate in your identity provider and export the metadata again.",
            )
        if all(existing.fingerprint_sha256 != info.fingerprint_sha256 for existing in infos):
            infos.append(info)
    return infos


def check_idp_url(url: str, code: str, label: str, *, allow_http: bool = False) -> str:
    """Refuse an IdP endpoint the browser must not be sent to: https only (http where ``allow_http``,
    i.e. development), with a host. ``javascript:``, ``data:`` and the like are refused with ``code``
    whether they were typed in or read from metadata."""
    if not url:
        raise MetadataError(code, f"Enter the IdP's {label}, starting with https://.")
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("https", "http") and bool(parts.hostname) and not (parts.username or parts.password)
    except ValueError:
        valid = False
    if not valid or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise MetadataError(code, f"The IdP's {label} must be a full https:// address; {url[:80]!r} is not.")
    if parts.scheme != "https" and not allow_http:
        raise MetadataError(code, f"The IdP's {label} must start with https:// (it is {url[:80]!r}).")
    return url


_HTML_NOT_METADATA = (
    "This is a web page (HTML), not SAML metadata. If it came from a link, that link opens a page "
    "rather than the metadata itself: use the metadata URL your identity provider shows, or download "
    "the metadata XML file and upload it."
)
_XML_START = re.compile(rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<", re.DOTALL)
_HTML_START = re.compile(
    rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>]|head[\s>]|body[\s>])", re.DOTALL | re.IGNORECASE
)


def _parse_metadata_xml(raw: bytes) -> Any:
    """Parse metadata with the hardened parser; say in plain words what else it is when it is not XML.

    The parser's own message ("Start tag expected, '<' not found, line 1") is kept as ``detail``
    for the audit event only.
    """
    if _HTML_START.match(raw):
        raise MetadataError("METADATA_NOT_SAML", _HTML_NOT_METADATA, detail="HTML document")
    try:
        return parse_xml_safely(raw, what="metadata")
    except ValueError as exc:
        if "DOCTYPE" in str(exc):
            message = (
                "This metadata contains a DOCTYPE declaration, which we refuse for safety. Upload the XML "
                "file exactly as your identity provider provides it."
            )
        elif _XML_START.match(raw):
            message = (
                "This XML is incomplete or broken, perhaps cut short while copying. Download the metadata "
                "again from your identity provider, or copy all of it."
            )
        else:
            message = (
                "This is not an XML file. SAML metadata is an XML file (it starts with <?xml or "
                "<EntityDescriptor): download it again from your identity provider."
            )
        raise MetadataError("METADATA_NOT_XML", message, detail=str(exc)[:500]) from None


def parse_idp_metadata(raw: bytes | str, *, allow_http: bool = False) -> ParsedMetadata:
    """Read one IdP's entity ID, SSO URL, SLO URL and signing certificates from metadata XML.

    The SSO and SLO URLs get the same checks as typed ones (``check_idp_url``): the browser is sent
    there, so metadata must not smuggle in a ``javascript:`` or plain-http address."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    raw = raw.removeprefix(b"\xef\xbb\xbf").strip()  # Entra's metadata starts with a BOM
    if not raw:
        raise MetadataError("METADATA_EMPTY", "The metadata is empty. Upload the XML file your IdP gave you.")
    if len(raw) > MAX_METADATA_BYTES:
        raise MetadataError(
            "METADATA_TOO_LARGE",
            "The metadata is larger than 512 KB; use the metadata of this one application, not a federation file.",
        )
    root = _parse_metadata_xml(raw)
    if root.tag == f"{{{MD}}}EntitiesDescriptor":
        entities = root.findall(f"{{{MD}}}EntityDescriptor")
        idp_entities = [e for e in entities if e.find("md:IDPSSODescriptor", NS) is not None]
        if len(idp_entities) != 1:
            raise MetadataError(
                "METADATA_MULTIPLE_ENTITIES",
                f"The file describes {len(idp_entities)} identity providers; use the metadata of exactly one.",
            )
        entity = idp_entities[0]
    elif root.tag == f"{{{MD}}}EntityDescriptor":
        entity = root
    elif root.tag.lower().rsplit("}", 1)[-1] == "html":
        raise MetadataError("METADATA_NOT_SAML", _HTML_NOT_METADATA, detail="root element html")
    else:
        raise MetadataError(
            "METADATA_NOT_SAML",
            "This XML is not SAML metadata. Download your identity provider's SAML metadata: an XML file "
            "that describes the identity provider (its entity ID, sign-in URL and certificate).",
            detail=f"root element {root.tag[:200]}",
        )

    descriptor = entity.find("md:IDPSSODescriptor", NS)
    if descriptor is None:
        raise MetadataError(
            "METADATA_NO_IDP",
            "This metadata describes an application (a service provider), not an identity provider: perhaps "
            "it is our own metadata. Download the identity provider's metadata instead, from the application's "
            "single sign-on page in your identity provider.",
            detail="no IDPSSODescriptor",
        )
    entity_id = _text(entity.get("entityID"))
    if not entity_id:
        raise MetadataError("METADATA_NO_ENTITY_ID", "The metadata has no entityID.")

    services = descriptor.findall("md:SingleSignOnService", NS)
    by_binding = {service.get("Binding"): _text(service.get("Location")) for service in services}
    sso_url = by_binding.get(REDIRECT) or by_binding.get(POST) or ""
    if not sso_url:
        raise MetadataError(
            "METADATA_NO_SSO_URL",
            "The metadata has no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding.",
        )
    slo_services = descriptor.findall("md:SingleLogoutService", NS)
    slo_url = _text(slo_services[0].get("Location")) if slo_services else None
    check_idp_url(sso_url, "METADATA_BAD_SSO_URL", "single sign-on URL", allow_http=allow_http)
    if slo_url:
        check_idp_url(slo_url, "METADATA_BAD_SLO_URL", "single logout URL", allow_http=allow_http)

    pems = [
        _text(node.text)
        for key_descriptor in descriptor.findall("md:KeyDescriptor", NS)
        if key_descriptor.get("use") in (None, "signing")
        for node in key_descriptor.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)
        if _text(node.text)
    ]
    if not pems:
        raise MetadataError(
            "METADATA_NO_SIGNING_CERTIFICATE",
            "The metadata contains no signing certificate, so we could not check your IdP's signatures. "
            "Export the metadata again after activating a signing certificate.",
        )
    certificates = read_certificates(pems)
    return ParsedMetadata(entity_id, sso_url, slo_url, certificates, certificate_warnings(certificates))


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries, which a network may route to: IPv4-mapped
    (``::ffff:a.b.c.d``), IPv4-compatible (``::a.b.c.d``), NAT64 (``64:ff9b::/96``), 6to4
    (``2002::/16``) and Teredo (server and client). Python calls several of these "global" even
    when they wrap 127.0.0.1 or 10.0.0.1."""
    found: list[ipaddress.IPv4Address] = []
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in ipaddress.IPv6Network("::/96") or ip in ipaddress.IPv6Network("64:ff9b::/96"):
        found.append(low32)
    if ip in ipaddress.IPv6Network("64:ff9b:1::/48"):  # local-use NAT64 (RFC 8215)
        found.append(low32)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def is_public_address(address: str) -> bool:
    """Whether ``address`` (as ``getaddrinfo`` gives it) and every IPv4 address it wraps are global."""
    ip = ipaddress.ip_address(address.split("%")[0])
    wrapped = embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else []
    return ip.is_global and not ip.is_multicast and all(v4.is_global for v4 in wrapped)


class _Deadline:
    """One point in time by which the whole fetch is over."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends_at = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left; raises ``TimeoutError`` once there are none (every socket call is bounded by it)."""
        left = self.ends_at - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"deadline of {self.seconds} s reached")
        return left


class _DeadlineReader(io.RawIOBase):
    """A socket read through a deadline: each ``recv`` may wait only for the time left, so a server
    that drips one byte at a time is cut off at the deadline, not after one time-out per byte."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock, self._deadline = sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self._sock.settimeout(self._deadline.remaining())
        return self._sock.recv_into(buffer)


class _ResponseSource:
    """What ``http.client.HTTPResponse`` reads from: only ``makefile`` is asked for."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock, self._deadline = sock, deadline

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


@dataclass(frozen=True)
class _Target:
    """A checked metadata URL: where to connect and what to ask for."""

    scheme: str
    host: str
    port: int
    request_target: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def _parse_url(url: str, *, allow_insecure: bool) -> _Target:
    invalid = MetadataError(
        "METADATA_URL_INVALID", "This is not a valid URL. Enter the full metadata URL, starting with https://."
    )
    try:
        parts = urlsplit(url.strip())
        hostname, port = parts.hostname, parts.port
    except ValueError:
        raise invalid from None
    if parts.scheme not in ("https", "http") or not hostname:
        raise MetadataError("METADATA_URL_INVALID", "Enter the full metadata URL, starting with https://.")
    if parts.scheme != "https" and not allow_insecure:
        raise MetadataError("METADATA_URL_NOT_HTTPS", "The metadata URL must start with https://.")
    if parts.username or parts.password:
        raise MetadataError("METADATA_URL_INVALID", "The metadata URL must not contain a user name or password.")
    try:
        host = hostname if ":" in hostname else hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise invalid from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # As a browser would send it: spaces and non-ASCII percent-encoded, never a raw CR or LF.
    target = quote(target, safe="!#$%&'()*+,/:;=?@[]~")
    return _Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), target)


def _lookup(target: _Target, deadline: _Deadline) -> list[tuple[Any, ...]]:
    """``getaddrinfo`` within the deadline. The system resolver has no time-out of its own that we
    control (a slow name server can take tens of seconds), so it runs in a daemon thread that is
    abandoned at the deadline; it ends when the resolver gives up."""
    infos: list[list[tuple[Any, ...]]] = []
    errors: list[Exception] = []

    def lookup() -> None:
        try:
            infos.append(
                socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
            )
        except (OSError, UnicodeError) as exc:
            errors.append(exc)

    thread = threading.Thread(target=lookup, name="metadata-dns", daemon=True)
    thread.start()
    thread.join(deadline.remaining())
    if infos:
        return infos[0]
    raise errors[0] if errors else TimeoutError(f"no DNS answer within {deadline.seconds} s")


def _resolve(target: _Target, deadline: _Deadline, *, allow_insecure: bool) -> list[str]:
    """Resolve the host once and check every address; the connection goes to these addresses only."""
    try:
        infos = _lookup(target, deadline)
    except (OSError, UnicodeError) as exc:
        log.warning("metadata fetch: %s did not resolve (%s: %s)", target.host, type(exc).__name__, exc)
        raise MetadataError("METADATA_URL_UNREACHABLE", UNREACHABLE_MESSAGE) from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_insecure:
        for address in addresses:
            if not is_public_address(address):
                raise MetadataError(
                    "METADATA_URL_PRIVATE",
                    f"The URL points at a private or local address ({address.split('%')[0]}); "
                    "metadata must come from the IdP's public URL.",
                )
    return addresses


def tls_context() -> ssl.SSLContext:
    """Certificate and hostname verification against the system's trust store."""
    return ssl.create_default_context()


def _connect(target: _Target, addresses: list[str], deadline: _Deadline) -> socket.socket:
    """Connect to the first checked address that answers, then (https) verify the certificate
    against the URL's host name, sent as SNI: no second name lookup anywhere."""
    error: OSError | None = None
    for address in addresses:
        try:
            sock = socket.create_connection((address, target.port), timeout=deadline.remaining())
        except OSError as exc:
            error = exc
            continue
        if target.scheme != "https":
            return sock
        try:
            tls = tls_context().wrap_socket(sock, server_hostname=target.host, do_handshake_on_connect=False)
        except BaseException:
            sock.close()
            raise
        try:
            tls.settimeout(deadline.remaining())  # the handshake's total time (CPython bounds it as a whole)
            tls.do_handshake()
        except BaseException:
            tls.close()
            raise
        return tls
    raise error or OSError("no address to connect to")


def _read_body(response: http.client.HTTPResponse) -> Iterator[bytes]:
    while chunk := response.read(64 * 1024):
        yield chunk


def fetch_metadata(
    url: str, *, allow_insecure: bool = False, deadline_seconds: float = FETCH_DEADLINE_SECONDS
) -> bytes:
    """Download metadata from ``url``: https only (unless allowed), public addresses only (IPv4
    wrapped in IPv6 included), resolved once and connected to the checked address, no redirects,
    at most ``MAX_METADATA_BYTES``, and ``deadline_seconds`` for the whole exchange.

    ``allow_insecure`` (development) permits http and private addresses. Network failures of any
    kind give one message (``UNREACHABLE_MESSAGE``); what happened is logged.
    """
    target = _parse_url(url, allow_insecure=allow_insecure)
    deadline = _Deadline(deadline_seconds)
    addresses = _resolve(target, deadline, allow_insecure=allow_insecure)
    sock: socket.socket | None = None
    try:
        sock = _connect(target, addresses, deadline)
        request = (
            f"GET {target.request_target} HTTP/1.1\r\nHost: {target.host_header}\r\n"
            "User-Agent: sso-portal-metadata-fetch\r\n"
            "Accept: application/samlmetadata+xml, application/xml, text/xml, */*\r\n"
            "Accept-Encoding: identity\r\nConnection: close\r\n\r\n"
        )
        sock.settimeout(deadline.remaining())
        sock.sendall(request.encode("ascii"))
        response = http.client.HTTPResponse(_ResponseSource(sock, deadline), method="GET")  # type: ignore[arg-type]
        response.begin()
        if 300 <= response.status < 400:
            raise MetadataError("METADATA_URL_REDIRECT", "The metadata URL redirects elsewhere; enter the final URL.")
        if response.status != 200:
            raise MetadataError(
                "METADATA_URL_STATUS", f"The metadata URL answered HTTP {response.status}. Check the URL."
            )
        body = b""
        for chunk in _read_body(response):
            body += chunk
            if len(body) > MAX_METADATA_BYTES:
                raise MetadataError("METADATA_TOO_LARGE", "The metadata URL returned more than 512 KB.")
        return body
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # OSError covers refused, reset, time-outs (TimeoutError) and ssl.SSLError: all one answer.
        log.warning(
            "metadata fetch from %s (addresses %s) failed: %s: %s", url, ", ".join(addresses), type(exc).__name__, exc
        )
        raise MetadataError("METADATA_URL_UNREACHABLE", UNREACHABLE_MESSAGE) from None
    finally:
        if sock is not None:
            sock.close()
