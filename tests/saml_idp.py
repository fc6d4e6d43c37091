"""The tests' identity provider: real keys, real XML signatures (xmlsec), no mocked validator."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from lxml import etree

from app.demo_idp.idp import (
    AssertionSpec,
    LogoutSpec,
    build_logout_request,
    build_logout_response,
    decode_authn_request,
    encode,
    redirect_query,
    signed_response,
    signed_xml,
)
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
        encrypt_to: str | None = None,
        encryption: str = "aes256-gcm",
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
            encrypt_to=encrypt_to,
            encryption=encryption,
        )

    def response(self, sp: dict[str, str], **kwargs) -> str:
        """A base64 SAMLResponse for the HTTP-POST binding."""
        return encode(self.response_element(sp, **kwargs))

    def logout_message(
        self,
        sp: dict[str, str],
        *,
        name_id: str | None = None,
        in_response_to: str | None = None,
        binding: str = "redirect",
        sign: bool = True,
        relay_state: str | None = None,
        destination: str | None = "sls",
        signer: TestIdP | None = None,
        **overrides,
    ) -> SloMessage:
        """A LogoutRequest (``name_id`` given) or LogoutResponse (``in_response_to`` given) from
        this IdP to the SP's SLS, in the Redirect or POST binding, signed unless ``sign=False``
        (``signer`` signs instead of this IdP, as a forger would)."""
        fields = {"issuer": self.entity_id, "destination": sp["sls_url"] if destination == "sls" else destination}
        fields.update(overrides)
        spec = LogoutSpec(name_id=name_id, in_response_to=in_response_to, **fields)
        kind = "SAMLRequest" if in_response_to is None else "SAMLResponse"
        element = build_logout_request(spec) if kind == "SAMLRequest" else build_logout_response(spec)
        key = (signer or self).key_pem
        if binding == "redirect":
            return SloMessage("GET", redirect_query(kind, element, key if sign else None, relay_state), {}, spec)
        if sign:
            element = signed_xml(element, key, (signer or self).cert_pem)
        data = {kind: encode(element)} | ({"RelayState": relay_state} if relay_state is not None else {})
        return SloMessage("POST", "", data, spec)


@dataclass
class SloMessage:
    """A logout message as the browser carries it to the SLS."""

    method: str
    query_string: str
    form: dict[str, str]
    spec: LogoutSpec

    def send(self, client, connection) -> object:
        """Deliver it to ``connection``'s SLS through ``client`` (a test browser)."""
        path = f"/saml/{connection.id}/sls"
        if self.method == "GET":
            return client.get(f"{path}?{self.query_string}")
        return client.post(path, data=self.form)


def message_from_location(location: str, kind: str = "SAMLRequest") -> etree._Element:
    """The SAML message carried by a redirect (HTTP-Redirect binding), as the IdP reads it."""
    query = parse_qs(urlsplit(location).query)
    return decode_authn_request(query[kind][0])


def authn_request_from_location(location: str) -> etree._Element:
    """The AuthnRequest carried by a redirect to the IdP (HTTP-Redirect binding)."""
    query = parse_qs(urlsplit(location).query)
    return decode_authn_request(query["SAMLRequest"][0])


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)
