"""The tests' identity provider: real keys, real XML signatures (xmlsec), no mocked validator."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from lxml import etree

from app.demo_idp.idp import AssertionSpec, decode_authn_request, encode, signed_response
from app.saml.certs import generate_key_pair

IDP_ENTITY_ID = "https://idp.example.test/saml/metadata"
IDP_SSO_URL = "https://idp.example.test/saml/sso"


@dataclass
class TestIdP:
    """Signs responses for a connection, as the IdP would (or as a forger would, when asked)."""

    key_pem: str
    cert_pem: str
    entity_id: str = IDP_ENTITY_ID

    __test__ = False  # not a test class

    @classmethod
    def create(cls, entity_id: str = IDP_ENTITY_ID) -> TestIdP:
        key_pem, cert_pem = generate_key_pair("Test IdP", years=3)
        return cls(key_pem, cert_pem, entity_id)

    def spec(self, sp: dict[str, str], *, email: str | None, request_id: str | None, **overrides) -> AssertionSpec:
        fields = {
            "issuer": self.entity_id,
            "acs_url": sp["acs_url"],
            "audience": sp["sp_entity_id"],
            "name_id": email,
            "in_response_to": request_id,
            "attributes": {"email": [email]} if email else {},
        }
        fields.update(overrides)
        return AssertionSpec(**fields)

    def response_element(
        self,
        sp: dict[str, str],
        *,
        email: str | None = "user@acme.example",
        request_id: str | None = None,
        sign_assertion: bool = True,
        sign_response: bool = False,
        algorithm: str = "sha256",
        inclusive_prefixes: tuple[str, ...] = (),
        **overrides,
    ) -> etree._Element:
        spec = self.spec(sp, email=email, request_id=request_id, **overrides)
        return signed_response(
            spec,
            self.key_pem,
            self.cert_pem,
            sign_assertion=sign_assertion,
            sign_response=sign_response,
            algorithm=algorithm,
            inclusive_prefixes=inclusive_prefixes,
        )

    def response(self, sp: dict[str, str], **kwargs) -> str:
        """A base64 SAMLResponse for the HTTP-POST binding."""
        return encode(self.response_element(sp, **kwargs))


def authn_request_from_location(location: str) -> etree._Element:
    """The AuthnRequest carried by a redirect to the IdP (HTTP-Redirect binding)."""
    query = parse_qs(urlsplit(location).query)
    return decode_authn_request(query["SAMLRequest"][0])


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)
