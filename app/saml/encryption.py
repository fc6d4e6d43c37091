"""Encrypted assertions: the SP's encryption keys, the per-connection policy, and decryption.

python3-saml decrypts an ``EncryptedAssertion`` with the one SP key in its settings and with
whatever algorithm the message names, RSA PKCS#1 v1.5 key transport included (open to padding
oracle attacks). So before anything is decrypted this module applies the connection's policy
(``off``, ``accept``, ``require``) and reads the ``EncryptionMethod``s: RSA-OAEP key transport and
AES-GCM or AES-CBC content only. It then decrypts with each active encryption key in turn (newest
first: a rollover publishes a new key before the old one is retired; keys loaded once per
process), inside python3-saml's Response so that its signature checks run as for a plain one, and
runs the signature guard on the decrypted assertion, whose signature the raw-response guard
could not see. From there the assertion is checked exactly as a plain one.
"""

from __future__ import annotations

import copy
import logging

import xmlsec
from lxml import etree
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from sqlalchemy import select

from app.errors import SignInError
from app.extensions import db
from app.key_encryption import decrypt_private_key, encrypt_private_key
from app.models import IdpConnection, SpEncryptionKey
from app.saml.certs import certificate_info, generate_key_pair
from app.saml.options import resolve_options
from app.saml.xmlguard import NS, check_signatures

log = logging.getLogger(__name__)

XENC = "http://www.w3.org/2001/04/xmlenc#"
#: Key transport we accept: RSA-OAEP (XML Encryption 1.0 and 1.1 identifiers).
KEY_TRANSPORTS = frozenset({f"{XENC}rsa-oaep-mgf1p", "http://www.w3.org/2009/xmlenc11#rsa-oaep"})
#: RSA PKCS#1 v1.5: refused before any decryption (Bleichenbacher padding oracle).
RSA_1_5 = f"{XENC}rsa-1_5"
#: Content encryption we accept: AES-GCM (preferred) and AES-CBC.
CONTENT_ALGORITHMS = frozenset(
    {
        "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        "http://www.w3.org/2009/xmlenc11#aes192-gcm",
        "http://www.w3.org/2009/xmlenc11#aes256-gcm",
        f"{XENC}aes128-cbc",
        f"{XENC}aes192-cbc",
        f"{XENC}aes256-cbc",
    }
)
#: What the SP metadata advertises, in order of preference.
ADVERTISED_ALGORITHMS = (
    "http://www.w3.org/2009/xmlenc11#aes256-gcm",
    "http://www.w3.org/2009/xmlenc11#aes128-gcm",
    f"{XENC}aes256-cbc",
    f"{XENC}aes128-cbc",
    "http://www.w3.org/2009/xmlenc11#rsa-oaep",
    f"{XENC}rsa-oaep-mgf1p",
)
_XENC_NS = {"xenc": XENC, **NS}


def active_encryption_keys(connection: IdpConnection) -> list[SpEncryptionKey]:
    """The connection's encryption keys not retired, newest first."""
    return list(
        db.session.scalars(
            select(SpEncryptionKey)
            .where(SpEncryptionKey.connection_id == connection.id, SpEncryptionKey.retired_at.is_(None))
            .order_by(SpEncryptionKey.id.desc())
        )
    )


def new_encryption_key(connection: IdpConnection) -> SpEncryptionKey:
    """Make a new encryption key pair for ``connection`` (published at once). The caller commits."""
    private_key, certificate = generate_key_pair(f"SSO portal encryption {connection.id}")
    info = certificate_info(certificate)
    key = SpEncryptionKey(
        connection_id=connection.id,
        # Encrypted at rest like the signing key: a database dump alone yields no usable key.
        private_key=encrypt_private_key(private_key),
        certificate=certificate,
        fingerprint_sha256=info.fingerprint_sha256,
        not_after=info.not_after,
    )
    db.session.add(key)
    return key


def is_encrypted(root: etree._Element, connection: IdpConnection) -> bool:
    """Apply the connection's encryption policy to a raw response; True when it is encrypted.

    Refuses an encrypted assertion when encryption is off, a plain one when it is required, and
    any algorithm but RSA-OAEP key transport with AES-GCM/CBC content, before decrypting anything.
    """
    encrypted = root.findall("saml:EncryptedAssertion", NS)
    mode = resolve_options(connection).encrypt_assertions
    if not encrypted:
        if mode == "require":
            raise SignInError("SAML_ENCRYPTION_REQUIRED", "a plain assertion where encryption is required")
        return False
    if mode == "off":
        raise SignInError("SAML_ENCRYPTION_OFF", "an encrypted assertion where encryption is off")
    if len(encrypted) != 1:
        raise SignInError("SAML_INVALID", f"{len(encrypted)} encrypted assertions")
    data = encrypted[0].findall("xenc:EncryptedData", _XENC_NS)
    if len(data) != 1:
        raise SignInError("SAML_INVALID", "the encrypted assertion does not hold exactly one EncryptedData")
    method = data[0].find("xenc:EncryptionMethod", _XENC_NS)
    content = method.get("Algorithm") if method is not None else None
    if content not in CONTENT_ALGORITHMS:
        raise SignInError("SAML_WEAK_ENCRYPTION", f"content encryption {content} refused")
    keys = encrypted[0].findall(".//xenc:EncryptedKey", _XENC_NS)
    if not keys:
        raise SignInError("SAML_INVALID", "no EncryptedKey in the encrypted assertion")
    for encrypted_key in keys:
        key_method = encrypted_key.find("xenc:EncryptionMethod", _XENC_NS)
        transport = key_method.get("Algorithm") if key_method is not None else None
        if transport not in KEY_TRANSPORTS:
            label = "RSA PKCS#1 v1.5" if transport == RSA_1_5 else transport
            raise SignInError("SAML_WEAK_ENCRYPTION", f"key transport {label} refused")
    return True


#: A keys manager holding one decryption key, by (key id, fingerprint). Making a keys manager
#: sets up an X.509 store and parsing a PEM key goes through OpenSSL 3's decoders: together about
#: 50 ms, ten times the decryption itself. Decryption only reads the manager.
_MANAGER_CACHE: dict[tuple[int, str], xmlsec.KeysManager] = {}
_MANAGER_CACHE_SIZE = 256


def _keys_manager(key: SpEncryptionKey) -> xmlsec.KeysManager:
    cache_key = (key.id, key.fingerprint_sha256)
    manager = _MANAGER_CACHE.get(cache_key)
    if manager is None:
        if len(_MANAGER_CACHE) >= _MANAGER_CACHE_SIZE:
            _MANAGER_CACHE.clear()
        manager = xmlsec.KeysManager()
        pem = decrypt_private_key(key.private_key, owner=f"encryption key {key.id}")
        manager.add_key(xmlsec.Key.from_memory(pem.encode(), xmlsec.constants.KeyDataFormatPem))
        _MANAGER_CACHE[cache_key] = manager
    return manager


class _DecryptedResponse(OneLogin_Saml2_Response):
    """python3-saml's Response, decrypting with one given (already loaded) key manager.

    Everything else is the library's: the Response signature is checked on the document as
    received, the assertion's on the decrypted one.
    """

    def __init__(self, settings: OneLogin_Saml2_Settings, response: str, manager: xmlsec.KeysManager) -> None:
        self._keys_manager = manager
        super().__init__(settings, response)

    def _decrypt_assertion(self, xml: etree._Element) -> etree._Element:
        wrapper = xml.find("saml:EncryptedAssertion", NS)
        data = wrapper.find("xenc:EncryptedData", _XENC_NS) if wrapper is not None else None
        if wrapper is None or data is None:
            raise SignInError("SAML_INVALID", "no EncryptedData in the encrypted assertion")
        key_info = data.find("ds:KeyInfo", NS)
        if key_info is None:
            key_info = etree.SubElement(data, f"{{{NS['ds']}}}KeyInfo")
        if key_info.find("xenc:EncryptedKey", _XENC_NS) is None:
            # The EncryptedKey beside the EncryptedData (referenced by a RetrievalMethod), as some
            # IdPs send it: put it where xmlsec looks, as python3-saml does.
            sibling = wrapper.find("xenc:EncryptedKey", _XENC_NS)
            if sibling is None:
                raise SignInError("SAML_INVALID", "no EncryptedKey for the EncryptedData")
            key_info.append(copy.deepcopy(sibling))
        decrypted = xmlsec.EncryptionContext(self._keys_manager).decrypt(data)
        xml.replace(wrapper, decrypted)
        return xml


def _verify_response_signature_first(root: etree._Element, connection: IdpConnection) -> None:
    """When the Response itself is signed, check that signature before decrypting anything.

    python3-saml decrypts first and verifies after; with AES-CBC, decrypting a tampered ciphertext
    and answering differently is the known padding-oracle attack on XML Encryption. A signed
    Response that does not verify is refused here, before any ciphertext is touched.
    """
    signature = root.find("ds:Signature", NS)
    if signature is None:
        return
    reference = signature.find("ds:SignedInfo/ds:Reference", NS)
    if reference is None or reference.get("URI") != f"#{root.get('ID', '')}":
        raise SignInError("SAML_SIGNATURE_INVALID", "the Response signature does not cover the Response")
    for certificate in connection.certificates:
        context = xmlsec.SignatureContext()
        context.register_id(root, "ID")
        context.key = xmlsec.Key.from_memory(certificate.pem.encode(), xmlsec.constants.KeyDataFormatCertPem)
        try:
            context.verify(signature)
            return
        except xmlsec.Error:
            continue
    raise SignInError(
        "SAML_SIGNATURE_INVALID", "the Response signature matches no certificate (checked before decrypting)"
    )


def open_encrypted_response(
    connection: IdpConnection, settings: OneLogin_Saml2_Settings, saml_response: str, root: etree._Element
) -> OneLogin_Saml2_Response:
    """python3-saml's Response for an encrypted one, decrypted with the first active key that
    opens it; the decrypted assertion's signatures pass the same guard as a plain one's."""
    _verify_response_signature_first(root, connection)
    for key in active_encryption_keys(connection):
        try:
            response = _DecryptedResponse(settings, saml_response, _keys_manager(key))
        except Exception as exc:  # noqa: BLE001 - a wrong key, bad ciphertext: try the next key
            log.info("encrypted assertion not opened by key %s: %s", key.id, type(exc).__name__)
            continue
        check_signatures(response.decrypted_document)
        return response
    raise SignInError("SAML_DECRYPTION_FAILED", "no active encryption key of this connection opens the assertion")
