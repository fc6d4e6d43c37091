"""Checks on the raw SAML Response that run before python3-saml sees it.

They refuse what the library would spend real CPU on (an XSLT transform executes during signature
verification) or parse unsafely, with our own error codes.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from typing import Any

from lxml import etree
from onelogin.saml2.xmlparser import GlobalParserTLS

from app.errors import SignInError

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}

ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
#: Canonicalisations allowed for SignedInfo and references. The ``WithComments`` variants are
#: refused: comments inside a NameID are the classic way to make two parsers read two emails.
ALLOWED_C14N = frozenset({EXC_C14N, C14N})
ALLOWED_TRANSFORMS = ALLOWED_C14N | {ENVELOPED}
INCLUSIVE_NAMESPACES = f"{{{EXC_C14N}}}InclusiveNamespaces"

STRONG_SIGNATURES = frozenset(
    {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    }
)
STRONG_DIGESTS = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2001/04/xmldsig-more#sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    }
)

_DTD_MARKERS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_B64_ALLOWED = re.compile(r"^[A-Za-z0-9+/=\s]*$")


def _parser() -> etree.XMLParser:
    """A parser that never loads DTDs, entities or anything from the network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )


def parse_xml_safely(raw: bytes, *, what: str = "document") -> etree._Element:
    """Parse ``raw`` with a hardened parser; refuse DTDs. Raises ValueError with a reason."""
    if _DTD_MARKERS.search(raw):
        raise ValueError(f"the {what} contains a DOCTYPE or ENTITY declaration")
    try:
        root = etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"the {what} is not well-formed XML ({exc.msg})") from None
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise ValueError(f"the {what} contains a DOCTYPE declaration")
    return root


class _ResponseParsers(threading.local):
    """One parser per thread (lxml parsers are not shared between threads)."""

    parser: etree.XMLParser | None = None


_response_parsers = _ResponseParsers()


def _response_parser() -> etree.XMLParser:
    """python3-saml's own parser settings (no entities, no network, comments and processing
    instructions dropped), with lxml's plain elements: the library's ``RestrictedElement`` only
    hides comments, processing instructions and entity nodes from Python iteration, and none
    are left in a tree parsed this way with its DTD refused."""
    parser = _response_parsers.parser
    if parser is None:
        parser = _response_parsers.parser = etree.XMLParser(**GlobalParserTLS.parser_config)
    return parser


def decode_saml_response(value: str) -> tuple[bytes, etree._Element]:
    """Decode the base64 ``SAMLResponse`` form field and parse it; refuse anything odd.

    Parsed once, with python3-saml's parser settings: the checks here and after validation read
    the very tree the library then validates and verifies, which is handed to it as it is
    (``core._ParsedResponse``). Signatures never cover comments, and none are left to read around.
    """
    if not value or not _B64_ALLOWED.match(value):
        raise SignInError("SAML_MALFORMED", "SAMLResponse is empty or not base64")
    try:
        raw = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise SignInError("SAML_MALFORMED", "SAMLResponse is not valid base64") from None
    if _DTD_MARKERS.search(raw):
        raise SignInError("SAML_DOCTYPE", "the SAML response contains a DOCTYPE or ENTITY declaration")
    try:
        root = etree.fromstring(raw, _response_parser())
    except etree.XMLSyntaxError as exc:
        raise SignInError("SAML_MALFORMED", f"the SAML response is not well-formed XML ({exc.msg})") from None
    except ValueError as exc:  # lxml refuses some inputs (an encoding declaration in a str) so
        raise SignInError("SAML_MALFORMED", f"the SAML response cannot be parsed ({exc})") from None
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise SignInError("SAML_DOCTYPE", "the SAML response contains a DOCTYPE declaration")
    if root.tag != f"{{{NS['samlp']}}}Response":
        raise SignInError("SAML_MALFORMED", f"root element is {root.tag}, not samlp:Response")
    return raw, root


def _plain_transform(transform: etree._Element) -> bool:
    """True when the transform carries no parameters but exclusive c14n's InclusiveNamespaces
    prefix list (Okta, Salesforce and others send one); anything else (an XPath, a stylesheet)
    is refused."""
    children = [child for child in transform if not isinstance(child, etree._Comment)]
    return all(
        transform.get("Algorithm") == EXC_C14N and child.tag == INCLUSIVE_NAMESPACES and len(child) == 0
        for child in children
    )


RESPONSE_SIGNERS = frozenset({f"{{{NS['samlp']}}}Response", f"{{{NS['saml']}}}Assertion"})


def check_signatures(
    root: etree._Element, *, allowed_parents: frozenset[str] = RESPONSE_SIGNERS, most: int = 2
) -> None:
    """Refuse signatures we will not verify: odd placement, transforms or weak algorithms.

    Runs before any cryptography, so that a hostile signature costs us a tree walk, not seconds.
    ``allowed_parents`` and ``most`` say where signatures may sit and how many (a Single Logout
    message carries one, on its root).
    """
    signatures = root.findall(".//ds:Signature", NS)
    if len(signatures) > most:
        raise SignInError("SAML_SIGNATURE_INVALID", f"{len(signatures)} signatures in the message")
    for signature in signatures:
        parent = signature.getparent()
        if parent is None or parent.tag not in allowed_parents:
            raise SignInError("SAML_SIGNATURE_INVALID", f"a signature inside {None if parent is None else parent.tag}")
        if signature.find("ds:Object", NS) is not None:
            raise SignInError("SAML_FORBIDDEN_TRANSFORM", "signature carries a ds:Object")
        signed_info = signature.find("ds:SignedInfo", NS)
        if signed_info is None:
            raise SignInError("SAML_SIGNATURE_INVALID", "signature without SignedInfo")
        c14n = signed_info.find("ds:CanonicalizationMethod", NS)
        if c14n is None or c14n.get("Algorithm") not in ALLOWED_C14N:
            raise SignInError(
                "SAML_FORBIDDEN_TRANSFORM",
                f"canonicalisation {None if c14n is None else c14n.get('Algorithm')} not allowed",
            )
        method = signed_info.find("ds:SignatureMethod", NS)
        algorithm = None if method is None else method.get("Algorithm")
        if algorithm not in STRONG_SIGNATURES:
            raise SignInError("SAML_WEAK_ALGORITHM", f"signature algorithm {algorithm} refused")
        references = signed_info.findall("ds:Reference", NS)
        if len(references) != 1:
            raise SignInError("SAML_SIGNATURE_INVALID", f"{len(references)} references in one signature")
        reference = references[0]
        for transform in reference.findall("ds:Transforms/ds:Transform", NS):
            if transform.get("Algorithm") not in ALLOWED_TRANSFORMS or not _plain_transform(transform):
                raise SignInError("SAML_FORBIDDEN_TRANSFORM", f"transform {transform.get('Algorithm')} not allowed")
        digest = reference.find("ds:DigestMethod", NS)
        digest_algorithm = None if digest is None else digest.get("Algorithm")
        if digest_algorithm not in STRONG_DIGESTS:
            raise SignInError("SAML_WEAK_ALGORITHM", f"digest algorithm {digest_algorithm} refused")


def _signs_itself(element: etree._Element) -> bool:
    """True when ``element`` has an enveloped signature as a direct child whose one reference
    names ``element`` (by its ID, or the whole document with an empty URI)."""
    signature = element.find("ds:Signature", NS)
    if signature is None:
        return False
    reference = signature.find("ds:SignedInfo/ds:Reference", NS)
    uri = None if reference is None else reference.get("URI")
    return uri == "" or (bool(element.get("ID")) and uri == f"#{element.get('ID')}")


def check_assertion_covered(document: etree._Element) -> None:
    """Refuse a response whose one assertion no signature covers (``SAML_UNSIGNED``).

    Runs after the library verified every signature present. Accepted: a signature on the
    assertion, or one on the Response of which the assertion is a direct child (the Response's
    enveloped signature digests its whole subtree, the assertion included; errata E26). A
    signature anywhere else covers nothing we read.
    """
    assertions = document.findall("saml:Assertion", NS)
    if len(assertions) != 1:
        raise SignInError("SAML_INVALID", f"{len(assertions)} assertions directly in the Response")
    if not (_signs_itself(assertions[0]) or _signs_itself(document)):
        raise SignInError("SAML_UNSIGNED", "no signature covers the assertion")
