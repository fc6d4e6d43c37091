"""What the SP metadata says beyond python3-saml's builder: Single Logout in both bindings."""

from __future__ import annotations

from lxml import etree

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
REDIRECT_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"


def add_logout_services(metadata: str, sls_url: str) -> str:
    """The SP metadata with our SingleLogoutService in both bindings, where the schema puts it
    (after the KeyDescriptors, before the NameIDFormat and the ACS)."""
    root = etree.fromstring(metadata.encode())
    md = MD
    descriptor = root.find(f"{{{md}}}SPSSODescriptor")
    if descriptor is None:
        return metadata
    for old in descriptor.findall(f"{{{md}}}SingleLogoutService"):
        descriptor.remove(old)
    keys = descriptor.findall(f"{{{md}}}KeyDescriptor")
    position = descriptor.index(keys[-1]) + 1 if keys else 0
    for binding in (POST_BINDING, REDIRECT_BINDING):
        service = etree.Element(f"{{{md}}}SingleLogoutService")
        service.set("Binding", binding)
        service.set("Location", sls_url)
        descriptor.insert(position, service)
    return etree.tostring(root, encoding="unicode")
