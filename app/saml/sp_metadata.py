"""What the SP metadata says beyond python3-saml's builder: encryption keys (several during a
rollover, with the algorithms we accept) and Single Logout in both bindings."""

from __future__ import annotations

from lxml import etree

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
REDIRECT_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
DS = "http://www.w3.org/2000/09/xmldsig#"


def add_encryption_keys(metadata: str, certificates: list[str], algorithms: tuple[str, ...]) -> str:
    """The SP metadata with one ``KeyDescriptor use="encryption"`` per certificate (base64 DER
    bodies), each listing the ``EncryptionMethod``s we accept, after the signing key."""
    root = etree.fromstring(metadata.encode())
    descriptor = root.find(f"{{{MD}}}SPSSODescriptor")
    if descriptor is None or not certificates:
        return metadata
    keys = descriptor.findall(f"{{{MD}}}KeyDescriptor")
    position = descriptor.index(keys[-1]) + 1 if keys else 0
    for certificate in reversed(certificates):
        key = etree.Element(f"{{{MD}}}KeyDescriptor", nsmap={"ds": DS})
        key.set("use", "encryption")
        data = etree.SubElement(etree.SubElement(key, f"{{{DS}}}KeyInfo"), f"{{{DS}}}X509Data")
        etree.SubElement(data, f"{{{DS}}}X509Certificate").text = certificate
        for algorithm in algorithms:
            etree.SubElement(key, f"{{{MD}}}EncryptionMethod").set("Algorithm", algorithm)
        descriptor.insert(position, key)
    return etree.tostring(root, encoding="unicode")


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
