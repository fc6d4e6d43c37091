"""Reading IdP metadata: from a file, pasted text or a URL, with errors a person can act on."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from app.errors import CodedError
from app.saml.certs import CertificateInfo, certificate_info, normalise_certificate
from app.saml.xmlguard import parse_xml_safely

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"md": MD, "ds": DS}
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"

#: Largest metadata document we read (real ones are a few kilobytes; federation aggregates are refused).
MAX_METADATA_BYTES = 512 * 1024
FETCH_TIMEOUT_SECONDS = 10


class MetadataError(CodedError):
    """Metadata we cannot use; ``code`` is stable, the message says what to do."""


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


def read_certificates(pems: list[str]) -> list[CertificateInfo]:
    """Parse certificates; refuse expired ones and duplicates with a clear message."""
    infos: list[CertificateInfo] = []
    for text in pems:
        try:
            info = certificate_info(normalise_certificate(text))
        except ValueError as exc:
            raise MetadataError(
                "METADATA_BAD_CERTIFICATE", f"A signing certificate could not be read: {exc}."
            ) from None
        if info.is_expired:
            raise MetadataError(
                "METADATA_CERTIFICATE_EXPIRED",
                f"The signing certificate {info.fingerprint_sha256[:23]}… expired on {info.not_after:%Y-%m-%d}. "
                "Create or activate a current certificate in your IdP and export the metadata again.",
            )
        if all(existing.fingerprint_sha256 != info.fingerprint_sha256 for existing in infos):
            infos.append(info)
    return infos


def parse_idp_metadata(raw: bytes | str) -> ParsedMetadata:
    """Read one IdP's entity ID, SSO URL, SLO URL and signing certificates from metadata XML."""
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
    try:
        root = parse_xml_safely(raw, what="metadata")
    except ValueError as exc:
        raise MetadataError(
            "METADATA_NOT_XML",
            f"This is not usable metadata: {exc}. Upload the XML file exactly as your IdP provides it.",
        ) from None

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
    else:
        raise MetadataError(
            "METADATA_NOT_SAML",
            "This XML is not SAML metadata (no EntityDescriptor). Download the IdP's SAML metadata.",
        )

    descriptor = entity.find("md:IDPSSODescriptor", NS)
    if descriptor is None:
        raise MetadataError(
            "METADATA_NO_IDP",
            "This metadata has no IDPSSODescriptor: it describes a service provider, not an identity provider. "
            "Download the identity provider's metadata instead.",
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


def _refuse_private_host(host: str) -> None:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)}
    except socket.gaierror:
        raise MetadataError("METADATA_URL_UNREACHABLE", f"The host {host} could not be found. Check the URL.") from None
    for address in addresses:
        ip = ipaddress.ip_address(str(address).split("%")[0])
        if not ip.is_global:
            raise MetadataError(
                "METADATA_URL_PRIVATE",
                f"The URL points at a private or local address ({ip}); metadata must come from the IdP's public URL.",
            )


def fetch_metadata(url: str, *, allow_insecure: bool = False) -> bytes:
    """Download metadata from ``url``: https only (unless allowed), public addresses only,
    no redirects, at most ``MAX_METADATA_BYTES``, ``FETCH_TIMEOUT_SECONDS`` to answer."""
    try:
        parts = urlsplit(url.strip())
        hostname, _port = parts.hostname, parts.port
    except ValueError:
        raise MetadataError(
            "METADATA_URL_INVALID", "This is not a valid URL. Enter the full metadata URL, starting with https://."
        ) from None
    if parts.scheme not in ("https", "http") or not hostname:
        raise MetadataError("METADATA_URL_INVALID", "Enter the full metadata URL, starting with https://.")
    if parts.scheme != "https" and not allow_insecure:
        raise MetadataError("METADATA_URL_NOT_HTTPS", "The metadata URL must start with https://.")
    if parts.username or parts.password:
        raise MetadataError("METADATA_URL_INVALID", "The metadata URL must not contain a user name or password.")
    if not allow_insecure:
        _refuse_private_host(hostname)
    try:
        with requests.get(url, timeout=FETCH_TIMEOUT_SECONDS, allow_redirects=False, stream=True) as response:
            if response.is_redirect:
                raise MetadataError(
                    "METADATA_URL_REDIRECT", "The metadata URL redirects elsewhere; enter the final URL."
                )
            if response.status_code != 200:
                raise MetadataError(
                    "METADATA_URL_STATUS", f"The metadata URL answered HTTP {response.status_code}. Check the URL."
                )
            body = b""
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > MAX_METADATA_BYTES:
                    raise MetadataError("METADATA_TOO_LARGE", "The metadata URL returned more than 512 KB.")
            return body
    except requests.Timeout:
        raise MetadataError(
            "METADATA_URL_TIMEOUT", f"The metadata URL did not answer within {FETCH_TIMEOUT_SECONDS} seconds."
        ) from None
    except requests.RequestException as exc:
        raise MetadataError(
            "METADATA_URL_UNREACHABLE", f"The metadata URL could not be fetched ({type(exc).__name__})."
        ) from None
