"""The generic SAML 2.0 core on python3-saml: the only package that imports ``onelogin``.

Callers use the verbs and types exported here, never the modules behind them.
"""

from app.saml.certs import (
    EXPIRY_WARNING_DAYS,
    CertificateInfo,
    certificate_info,
    expiry_state,
    generate_key_pair,
    pem_body,
)
from app.saml.core import VerifiedAssertion, consume_response, sp_metadata_xml, start_login
from app.saml.encryption import active_encryption_keys, new_encryption_key
from app.saml.logout import (
    IdpLogoutRequest,
    IdpLogoutResponse,
    logout_response_location,
    receive_logout_message,
    start_logout,
)
from app.saml.metadata import (
    MAX_METADATA_BYTES,
    MetadataError,
    ParsedMetadata,
    certificate_warnings,
    check_idp_url,
    fetch_metadata,
    parse_idp_metadata,
    read_certificates,
)
from app.saml.options import ENCRYPTION_MODES, OVERRIDABLE, ConnectionOptions, overrides_of, resolve_options
from app.saml.urls import SpValues, sp_values

__all__ = [
    "ENCRYPTION_MODES",
    "EXPIRY_WARNING_DAYS",
    "MAX_METADATA_BYTES",
    "OVERRIDABLE",
    "CertificateInfo",
    "ConnectionOptions",
    "IdpLogoutRequest",
    "IdpLogoutResponse",
    "MetadataError",
    "ParsedMetadata",
    "SpValues",
    "VerifiedAssertion",
    "active_encryption_keys",
    "certificate_info",
    "certificate_warnings",
    "check_idp_url",
    "consume_response",
    "expiry_state",
    "fetch_metadata",
    "generate_key_pair",
    "logout_response_location",
    "new_encryption_key",
    "overrides_of",
    "parse_idp_metadata",
    "pem_body",
    "read_certificates",
    "receive_logout_message",
    "resolve_options",
    "sp_metadata_xml",
    "sp_values",
    "start_login",
    "start_logout",
]
