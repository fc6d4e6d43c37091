"""Build and sign SAML Responses, as a real IdP would (and, for tests, as a forger would)."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import zlib
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote_plus

import xmlsec
from lxml import etree

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
NSMAP = {"samlp": SAMLP, "saml": SAML}
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"

SIGN_METHODS = {
    "sha256": (xmlsec.constants.TransformRsaSha256, xmlsec.constants.TransformSha256),
    "sha1": (xmlsec.constants.TransformRsaSha1, xmlsec.constants.TransformSha1),
}


def _instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    """A SAML ID: starts with a letter, 160 bits of randomness."""
    return "_" + secrets.token_hex(20)


@dataclass
class AssertionSpec:
    """Everything that goes into one Response. Fields set to None are left out of the XML."""

    issuer: str
    acs_url: str | None
    audience: str | None
    name_id: str | None
    in_response_to: str | None = None
    destination: str | None = "acs"  # "acs" means: the same as acs_url
    recipient: str | None = "acs"
    name_id_format: str | None = EMAIL_FORMAT
    attributes: dict[str, list[str]] = field(default_factory=dict)
    #: InResponseTo on SubjectConfirmationData; "envelope" means: the same as in_response_to.
    scd_in_response_to: str | None = "envelope"
    now: dt.datetime | None = None
    not_before_offset: dt.timedelta = dt.timedelta(minutes=-1)
    lifetime: dt.timedelta = dt.timedelta(minutes=5)
    status: str = SUCCESS
    response_id: str = field(default_factory=new_id)
    assertion_id: str = field(default_factory=new_id)
    session_index: str | None = field(default_factory=new_id)


def build_response(spec: AssertionSpec) -> etree._Element:
    """The unsigned Response element for ``spec``."""
    now = spec.now or dt.datetime.now(dt.UTC)
    destination = spec.acs_url if spec.destination == "acs" else spec.destination
    recipient = spec.acs_url if spec.recipient == "acs" else spec.recipient
    scd_irt = spec.in_response_to if spec.scd_in_response_to == "envelope" else spec.scd_in_response_to

    response = etree.Element(f"{{{SAMLP}}}Response", nsmap=NSMAP)
    response.set("ID", spec.response_id)
    response.set("Version", "2.0")
    response.set("IssueInstant", _instant(now))
    if destination is not None:
        response.set("Destination", destination)
    if spec.in_response_to is not None:
        response.set("InResponseTo", spec.in_response_to)
    etree.SubElement(response, f"{{{SAML}}}Issuer").text = spec.issuer
    status = etree.SubElement(response, f"{{{SAMLP}}}Status")
    etree.SubElement(status, f"{{{SAMLP}}}StatusCode").set("Value", spec.status)
    if spec.status != SUCCESS:
        return response

    assertion = etree.SubElement(response, f"{{{SAML}}}Assertion")
    assertion.set("ID", spec.assertion_id)
    assertion.set("Version", "2.0")
    assertion.set("IssueInstant", _instant(now))
    etree.SubElement(assertion, f"{{{SAML}}}Issuer").text = spec.issuer
    subject = etree.SubElement(assertion, f"{{{SAML}}}Subject")
    if spec.name_id is not None:
        name_id = etree.SubElement(subject, f"{{{SAML}}}NameID")
        if spec.name_id_format:
            name_id.set("Format", spec.name_id_format)
        name_id.text = spec.name_id
    confirmation = etree.SubElement(subject, f"{{{SAML}}}SubjectConfirmation")
    confirmation.set("Method", "urn:oasis:names:tc:SAML:2.0:cm:bearer")
    data = etree.SubElement(confirmation, f"{{{SAML}}}SubjectConfirmationData")
    data.set("NotOnOrAfter", _instant(now + spec.lifetime))
    if recipient is not None:
        data.set("Recipient", recipient)
    if scd_irt is not None:
        data.set("InResponseTo", scd_irt)
    conditions = etree.SubElement(assertion, f"{{{SAML}}}Conditions")
    conditions.set("NotBefore", _instant(now + spec.not_before_offset))
    conditions.set("NotOnOrAfter", _instant(now + spec.lifetime))
    if spec.audience is not None:
        restriction = etree.SubElement(conditions, f"{{{SAML}}}AudienceRestriction")
        etree.SubElement(restriction, f"{{{SAML}}}Audience").text = spec.audience
    statement = etree.SubElement(assertion, f"{{{SAML}}}AuthnStatement")
    statement.set("AuthnInstant", _instant(now))
    if spec.session_index:
        statement.set("SessionIndex", spec.session_index)
    context = etree.SubElement(statement, f"{{{SAML}}}AuthnContext")
    etree.SubElement(
        context, f"{{{SAML}}}AuthnContextClassRef"
    ).text = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
    if spec.attributes:
        attributes = etree.SubElement(assertion, f"{{{SAML}}}AttributeStatement")
        for name, values in spec.attributes.items():
            attribute = etree.SubElement(attributes, f"{{{SAML}}}Attribute")
            attribute.set("Name", name)
            attribute.set("NameFormat", "urn:oasis:names:tc:SAML:2.0:attrname-format:basic")
            for value in values:
                etree.SubElement(attribute, f"{{{SAML}}}AttributeValue").text = value
    return response


def sign_element(
    element: etree._Element,
    key_pem: str,
    cert_pem: str,
    algorithm: str = "sha256",
    inclusive_prefixes: tuple[str, ...] = (),
) -> None:
    """Sign ``element`` in place (enveloped signature right after its Issuer, exclusive c14n,
    with an InclusiveNamespaces prefix list when given, as Okta and Salesforce send)."""
    sign_method, digest_method = SIGN_METHODS[algorithm]
    signature = xmlsec.template.create(element, xmlsec.constants.TransformExclC14N, sign_method, ns="ds")
    issuer = element.find(f"{{{SAML}}}Issuer")
    if issuer is None:
        raise ValueError("the element to sign has no Issuer to put the signature after")
    issuer.addnext(signature)
    reference = xmlsec.template.add_reference(signature, digest_method, uri=f"#{element.get('ID')}")
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    c14n = xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    if inclusive_prefixes:
        xmlsec.template.transform_add_c14n_inclusive_namespaces(c14n, list(inclusive_prefixes))
    key_info = xmlsec.template.ensure_key_info(signature)
    xmlsec.template.add_x509_data(key_info)
    context = xmlsec.SignatureContext()
    context.register_id(element, "ID")
    key = xmlsec.Key.from_memory(key_pem.encode(), xmlsec.constants.KeyDataFormatPem)
    key.load_cert_from_memory(cert_pem.encode(), xmlsec.constants.KeyDataFormatPem)
    context.key = key
    context.sign(signature)


def signed_response(
    spec: AssertionSpec,
    key_pem: str,
    cert_pem: str,
    *,
    sign_assertion: bool = True,
    sign_response: bool = False,
    algorithm: str = "sha256",
    inclusive_prefixes: tuple[str, ...] = (),
    encrypt_to: str | None = None,
    encryption: str = "aes256-gcm",
) -> etree._Element:
    """Build the Response for ``spec`` and sign the assertion and/or the response; with
    ``encrypt_to`` (the SP's encryption certificate) the signed assertion is encrypted to it."""
    response = build_response(spec)
    assertion = response.find(f"{{{SAML}}}Assertion")
    if sign_assertion and assertion is not None:
        sign_element(assertion, key_pem, cert_pem, algorithm, inclusive_prefixes)
    if encrypt_to is not None and assertion is not None:
        # Sign, then encrypt (the SP checks the signature after decrypting), then sign the Response.
        response = etree.fromstring(etree.tostring(response))
        encrypt_assertion(response, encrypt_to, content=encryption)
    if sign_response:
        sign_element(response, key_pem, cert_pem, algorithm, inclusive_prefixes)
    # xmlsec builds the signature nodes with its own copy of libxml2; re-parse so that lxml can
    # search and edit the whole tree (tests forge responses from it).
    return etree.fromstring(etree.tostring(response))


#: Content encryption algorithms the demo IdP can use (RSA-OAEP key transport for each).
CONTENT_ENCRYPTION = {
    "aes256-gcm": xmlsec.constants.TransformAes256Gcm,
    "aes128-gcm": xmlsec.constants.TransformAes128Gcm,
    "aes256-cbc": xmlsec.constants.TransformAes256Cbc,
    "aes128-cbc": xmlsec.constants.TransformAes128Cbc,
}


def encrypt_assertion(response: etree._Element, cert_pem: str, *, content: str = "aes256-gcm") -> None:
    """Replace the Response's Assertion by an EncryptedAssertion for ``cert_pem`` (RSA-OAEP key
    transport, ``content`` for the data), as an IdP with assertion encryption on sends it."""
    assertion = response.find(f"{{{SAML}}}Assertion")
    if assertion is None:
        raise ValueError("no Assertion to encrypt")
    transform = CONTENT_ENCRYPTION[content]
    template = xmlsec.template.encrypted_data_create(
        response, transform, type=xmlsec.constants.TypeEncElement, ns="xenc"
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="ds")
    encrypted_key = xmlsec.template.add_encrypted_key(key_info, xmlsec.constants.TransformRsaOaep)
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(cert_pem.encode(), xmlsec.constants.KeyDataFormatCertPem))
    context = xmlsec.EncryptionContext(manager)
    bits = 128 if "128" in content else 256
    context.key = xmlsec.Key.generate(xmlsec.constants.KeyDataAes, bits, xmlsec.constants.KeyDataTypeSession)
    wrapper = etree.Element(f"{{{SAML}}}EncryptedAssertion")
    assertion.addprevious(wrapper)
    wrapper.append(assertion)
    context.encrypt_xml(template, assertion)


def encode(element: etree._Element) -> str:
    """Base64 of the serialised element, as the HTTP-POST binding carries it."""
    return base64.b64encode(etree.tostring(element, xml_declaration=False, encoding="utf-8")).decode()


def decode_authn_request(saml_request: str) -> etree._Element:
    """Inflate and parse an HTTP-Redirect AuthnRequest (as an IdP would on receiving it)."""
    raw = zlib.decompress(base64.b64decode(saml_request), -15)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(raw, parser)


# --- Single Logout: LogoutRequest / LogoutResponse, as an IdP sends and answers them ------------

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


@dataclass
class LogoutSpec:
    """One LogoutRequest (``name_id`` set) or LogoutResponse (``in_response_to`` set)."""

    issuer: str
    destination: str | None
    name_id: str | None = None
    session_indexes: tuple[str, ...] = ()
    in_response_to: str | None = None
    status: str = SUCCESS
    now: dt.datetime | None = None
    #: NotOnOrAfter of a LogoutRequest, from ``now``; None leaves it out.
    lifetime: dt.timedelta | None = dt.timedelta(minutes=5)
    message_id: str = field(default_factory=new_id)


def build_logout_request(spec: LogoutSpec) -> etree._Element:
    """The unsigned LogoutRequest for ``spec``."""
    now = spec.now or dt.datetime.now(dt.UTC)
    request = etree.Element(f"{{{SAMLP}}}LogoutRequest", nsmap=NSMAP)
    request.set("ID", spec.message_id)
    request.set("Version", "2.0")
    request.set("IssueInstant", _instant(now))
    if spec.destination is not None:
        request.set("Destination", spec.destination)
    if spec.lifetime is not None:
        request.set("NotOnOrAfter", _instant(now + spec.lifetime))
    etree.SubElement(request, f"{{{SAML}}}Issuer").text = spec.issuer
    if spec.name_id is not None:
        name_id = etree.SubElement(request, f"{{{SAML}}}NameID")
        name_id.set("Format", EMAIL_FORMAT)
        name_id.text = spec.name_id
    for index in spec.session_indexes:
        etree.SubElement(request, f"{{{SAMLP}}}SessionIndex").text = index
    return request


def build_logout_response(spec: LogoutSpec) -> etree._Element:
    """The unsigned LogoutResponse for ``spec``."""
    now = spec.now or dt.datetime.now(dt.UTC)
    response = etree.Element(f"{{{SAMLP}}}LogoutResponse", nsmap=NSMAP)
    response.set("ID", spec.message_id)
    response.set("Version", "2.0")
    response.set("IssueInstant", _instant(now))
    if spec.destination is not None:
        response.set("Destination", spec.destination)
    if spec.in_response_to is not None:
        response.set("InResponseTo", spec.in_response_to)
    etree.SubElement(response, f"{{{SAML}}}Issuer").text = spec.issuer
    status = etree.SubElement(response, f"{{{SAMLP}}}Status")
    etree.SubElement(status, f"{{{SAMLP}}}StatusCode").set("Value", spec.status)
    return response


def signed_xml(element: etree._Element, key_pem: str, cert_pem: str, algorithm: str = "sha256") -> etree._Element:
    """``element`` with an enveloped signature (HTTP-POST binding), re-parsed for lxml."""
    sign_element(element, key_pem, cert_pem, algorithm)
    return etree.fromstring(etree.tostring(element))


def redirect_query(kind: str, element: etree._Element, key_pem: str | None, relay_state: str | None = None) -> str:
    """The query string carrying ``element`` in the HTTP-Redirect binding (``kind`` is
    ``SAMLRequest`` or ``SAMLResponse``), signed with ``key_pem`` (RSA-SHA256) unless it is None."""
    deflated = zlib.compress(etree.tostring(element))[2:-4]
    parts = [f"{kind}={quote_plus(base64.b64encode(deflated).decode())}"]
    if relay_state is not None:
        parts.append(f"RelayState={quote_plus(relay_state)}")
    if key_pem is None:
        return "&".join(parts)
    parts.append(f"SigAlg={quote_plus(RSA_SHA256)}")
    signed = "&".join(parts)
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(key_pem.encode(), xmlsec.constants.KeyDataFormatPem)
    signature = context.sign_binary(signed.encode(), xmlsec.constants.TransformRsaSha256)
    return f"{signed}&Signature={quote_plus(base64.b64encode(signature).decode())}"


def verify_redirect_signature(query: str, kind: str, cert_pem: str) -> bool:
    """Check the SP's Redirect-binding signature on ``query`` (as an IdP does)."""
    pairs = dict(parse_qsl(query))
    parts = query.split("&")
    signed = "&".join(part for name in (kind, "RelayState", "SigAlg") for part in parts if part.startswith(f"{name}="))
    if pairs.get("SigAlg") != RSA_SHA256 or "Signature" not in pairs:
        return False
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(cert_pem.encode(), xmlsec.constants.KeyDataFormatCertPem)
    try:
        context.verify_binary(
            signed.encode(), xmlsec.constants.TransformRsaSha256, base64.b64decode(pairs["Signature"])
        )
    except xmlsec.Error:
        return False
    return True
