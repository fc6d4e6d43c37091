"""The HTTP-Redirect binding's query signature (SAML bindings 3.4.4.1), for what the SP sends."""

from __future__ import annotations

import base64
import zlib
from urllib.parse import quote_plus

import xmlsec

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


def signed_redirect(url: str, kind: str, xml: bytes, key_pem: str, relay_state: str | None = None) -> str:
    """``url`` carrying ``xml`` as ``kind`` (``SAMLRequest`` or ``SAMLResponse``), DEFLATEd and
    signed with ``key_pem`` (RSA-SHA256) over the exact octets of the query, as the IdP checks."""
    encoded = base64.b64encode(zlib.compress(xml)[2:-4]).decode()
    parts = [f"{kind}={quote_plus(encoded)}"]
    if relay_state is not None:
        parts.append(f"RelayState={quote_plus(relay_state)}")
    parts.append(f"SigAlg={quote_plus(RSA_SHA256)}")
    signed = "&".join(parts)
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(key_pem.encode(), xmlsec.constants.KeyDataFormatPem)
    signature = context.sign_binary(signed.encode(), xmlsec.constants.TransformRsaSha256)
    query = f"{signed}&Signature={quote_plus(base64.b64encode(signature).decode())}"
    return f"{url}{'&' if '?' in url else '?'}{query}"
