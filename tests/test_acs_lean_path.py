"""What the ACS's faster path must not change: a certificate rollover costs one verification,
not one per certificate, and trusts exactly the connection's certificates; the read-only copy of
a connection sees every change at once; a successful sign-in gives its rate-limit place back in
its own commit; SAML timestamps read as the library reads them."""

from __future__ import annotations

import datetime as dt

import pytest
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from app.extensions import db
from app.models import IdpCertificate, RateLimitCounter
from app.models.idp_connection import DRAFT
from app.saml import certificate_info
from app.saml.core import _parse_time
from app.services.connections import add_certificates
from tests.helpers.audit import audit_events
from tests.helpers.signin import post_acs, start_sso
from tests.saml_idp import TestIdP

EMAIL = "admin@acme.example"


@pytest.fixture(scope="module")
def old_idps() -> list[TestIdP]:
    """Four earlier signing keys of the same IdP (a long rollover)."""
    return [TestIdP.create() for _ in range(4)]


@pytest.fixture
def rollover(acme, idp, old_idps):
    """The acme connection trusting five certificates: four old ones first, the current one last."""
    connection = acme["connection"]
    db.session.query(IdpCertificate).filter_by(connection_id=connection.id).delete()
    db.session.commit()
    db.session.refresh(connection)
    add_certificates(connection, [certificate_info(signer.cert_pem) for signer in (*old_idps, idp)])
    db.session.commit()
    return acme


def _refused(response, code: str) -> bool:
    """A refusal page with ``code``, and the refusal in the audit trail."""
    return (
        response.status_code >= 400
        and code.encode() in response.data
        and (audit_events("signin.sso")[-1].error_code == code)
    )


def _verifications(monkeypatch) -> list[bool]:
    """Record each signature verification the library runs (and let it run)."""
    results: list[bool] = []
    verify = OneLogin_Saml2_Utils.validate_node_sign

    def counted(*args, **kwargs):
        outcome = verify(*args, **kwargs)
        results.append(bool(outcome))
        return outcome

    monkeypatch.setattr(OneLogin_Saml2_Utils, "validate_node_sign", staticmethod(counted))
    return results


@pytest.mark.parametrize("signer_index", [0, 4])
def test_a_rollover_costs_one_verification_per_signature(client, rollover, idp, old_idps, monkeypatch, signer_index):
    signer = [*old_idps, idp][signer_index]
    request_id = start_sso(client, EMAIL)
    saml = signer.response(rollover["sp"], email=EMAIL, request_id=request_id, sign_response=True)
    verifications = _verifications(monkeypatch)
    assert post_acs(client, rollover["connection"], saml).status_code == 302
    assert verifications == [True, True]  # the Response's and the Assertion's, each at the first try


def test_keyinfo_naming_a_trusted_certificate_does_not_make_a_forgery_pass(client, rollover, idp, monkeypatch):
    """The hint only orders the trusted certificates: a signature by an unknown key that names the
    current certificate in its KeyInfo is tried against all five and refused."""
    forger = TestIdP(key_pem=TestIdP.create().key_pem, cert_pem=idp.cert_pem)
    request_id = start_sso(client, EMAIL)
    saml = forger.response(rollover["sp"], email=EMAIL, request_id=request_id)
    verifications = _verifications(monkeypatch)
    response = post_acs(client, rollover["connection"], saml)
    assert _refused(response, "SAML_SIGNATURE_INVALID")
    assert verifications == [False] * 5


def test_removing_the_signing_certificate_counts_at_once(client, rollover, idp, old_idps):
    connection = rollover["connection"]
    request_id = start_sso(client, EMAIL)
    saml = idp.response(rollover["sp"], email=EMAIL, request_id=request_id)
    assert post_acs(client, connection, saml).status_code == 302  # the copy is cached now
    current = certificate_info(idp.cert_pem).fingerprint_sha256
    db.session.query(IdpCertificate).filter_by(connection_id=connection.id, fingerprint_sha256=current).delete()
    db.session.commit()
    request_id = start_sso(client, EMAIL)
    response = post_acs(client, connection, idp.response(rollover["sp"], email=EMAIL, request_id=request_id))
    assert _refused(response, "SAML_SIGNATURE_INVALID")


def test_disabling_the_connection_counts_at_once(client, acme, idp):
    connection = acme["connection"]
    request_id = start_sso(client, EMAIL)
    assert post_acs(client, connection, idp.response(acme["sp"], email=EMAIL, request_id=request_id)).status_code == 302
    request_id = start_sso(client, EMAIL)
    saml = idp.response(acme["sp"], email=EMAIL, request_id=request_id)
    connection.status = DRAFT
    db.session.commit()
    response = post_acs(client, connection, saml)
    assert _refused(response, "CONNECTION_DISABLED")


def _acs_places() -> int:
    return sum(row.count for row in db.session.query(RateLimitCounter) if row.key.startswith("saml.acs:"))


def test_a_successful_sign_in_gives_its_rate_limit_place_back_and_a_refusal_keeps_it(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    saml = idp.response(acme["sp"], email=EMAIL, request_id=request_id)
    assert post_acs(client, acme["connection"], saml, finish=False).status_code == 303
    db.session.expire_all()
    assert _acs_places() == 0
    assert _refused(post_acs(client, acme["connection"], saml, finish=False), "SAML_IN_RESPONSE_TO_MISMATCH")  # used up
    db.session.expire_all()
    assert _acs_places() == 1


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-01T18:00:05Z",
        "2026-12-01T18:00:05.5Z",
        "2026-12-01T18:00:05.123456789Z",
        "1999-01-31T00:00:00Z",
        "2024-02-29T23:59:59Z",
    ],
)
def test_saml_times_read_as_the_library_reads_them(value):
    library = dt.datetime.fromtimestamp(OneLogin_Saml2_Utils.parse_SAML_to_time(value), dt.UTC).replace(tzinfo=None)
    assert _parse_time(value) == library


@pytest.mark.parametrize("value", ["2026-13-01T18:00:05Z", "2026-02-30T18:00:05Z", "yesterday", "2026-12-01 18:00:05"])
def test_bad_saml_times_are_refused(value):
    with pytest.raises(Exception) as refused:
        _parse_time(value)
    assert getattr(refused.value, "code", None) == "SAML_MALFORMED"
