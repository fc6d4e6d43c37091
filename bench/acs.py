"""ACS benchmark. Prints each figure beside its baseline from the same run.

    .venv/bin/python bench/acs.py [--responses 300] [--rounds 7]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1/test_acs .venv/bin/python bench/acs.py

The CPU cost of a full ACS request through the app (base64 + XML guard, python3-saml
   validation, our checks, pending-request consume + replay-cache insert, user lookup, sign-in
   result, 303), and of the same-site finishing request that follows it (claim the result, session
   insert, audit event, redirect), against the bare ``OneLogin_Saml2_Response.is_valid`` with the
   library's defaults on the same responses, measured in the same rounds. Costs are CPU time of
   this process (``time.process_time``), not wall time: other programs sharing the cores do not
   count. The figure is the median over the rounds of (ours / bare), so lower is better; the
   target is at most 1.0x (aim 0.6x). With 1 and with 5 certificates on the connection (signed
   by the first and by the last of the five): the cost must stay flat.

What a session adds to a request is ``bench/session_check.py``'s figure (worker CPU, 10,000 and
1,000,000 sessions).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlencode

from _shared import (  # first: puts the repository on sys.path
    BASE_URL,
    build_app,
    database_label,
    enabled_okta_connection,
)
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from app.extensions import db
from app.models import PendingRequest
from app.models.idp_connection import ENABLED
from app.saml import certificate_info
from app.saml.core import binding_hash, saml_settings
from app.saml.urls import request_data_for, sp_values
from app.services.connections import add_certificates, create_connection
from app.timeutil import utcnow
from tests.saml_idp import TestIdP

#: The library's own functions, captured before create_app replaces them with faster ones: the
#: baseline is python3-saml exactly as it comes.
LIBRARY_DEFAULTS = {
    (owner, name): owner.__dict__[name]
    for owner, name in (
        (OneLogin_Saml2_XML, "validate_xml"),
        (OneLogin_Saml2_XML, "query"),
        (OneLogin_Saml2_Utils, "parse_SAML_to_time"),
        (OneLogin_Saml2_Utils, "validate_node_sign"),
    )
}

BINDING = "bench-browser-binding-value-0123456789"
EMAIL = "bench@acme.example"
TARGET, AIM = 1.0, 0.6


@contextmanager
def library_defaults() -> Iterator[None]:
    """python3-saml with its own (uncached) schema validation, XPath queries, time parsing and key loading."""
    installed = {(owner, name): owner.__dict__[name] for owner, name in LIBRARY_DEFAULTS}
    for (owner, name), function in LIBRARY_DEFAULTS.items():
        setattr(owner, name, function)
    try:
        yield
    finally:
        for (owner, name), function in installed.items():
            setattr(owner, name, function)


@dataclass
class Scenario:
    """One connection shape: its certificates, which of them signs, and the measured rounds."""

    label: str
    connection_id: int
    settings: object
    acs_url: str
    signer: TestIdP
    ours: list[float] = field(default_factory=list)
    finish: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    cached: list[float] = field(default_factory=list)


def _scenarios(idp: TestIdP) -> list[Scenario]:
    """The Okta connection with one certificate, and two more with five (a long rollover)."""
    _user, single = enabled_okta_connection(idp, EMAIL)
    others = [TestIdP.create() for _ in range(4)]
    five = []
    for _ in range(2):
        connection = create_connection(single.account, "okta")
        connection.idp_entity_id, connection.idp_sso_url = single.idp_entity_id, single.idp_sso_url
        add_certificates(connection, [certificate_info(signer.cert_pem) for signer in (*others, idp)])
        connection.status = ENABLED
        five.append(connection)
    db.session.flush()
    shapes = [
        ("1 certificate", single, idp),
        ("5 certificates, signed by the last", five[0], idp),
        ("5 certificates, signed by the first", five[1], others[0]),
    ]
    return [
        Scenario(label, connection.id, saml_settings(connection), sp_values(connection).acs_url, signer)
        for label, connection, signer in shapes
    ]


def _responses(scenario: Scenario, count: int, tag: str) -> list[tuple[str, str]]:
    """``count`` pending requests of this browser and the signed responses answering them."""
    now = utcnow()
    sp = {"acs_url": scenario.acs_url, "sp_entity_id": scenario.acs_url.removesuffix("/acs") + "/metadata"}
    request_ids = [f"_bench{scenario.connection_id}{tag}{i:05d}" for i in range(count)]
    db.session.add_all(
        PendingRequest(
            id=rid,
            connection_id=scenario.connection_id,
            app="portal",
            next_path="/portal/",
            browser_binding_hash=binding_hash(BINDING),
            purpose="login",
            created_at=now,
            expires_at=now.replace(year=now.year + 1),
        )
        for rid in request_ids
    )
    db.session.commit()
    # Okta's shape: Response and Assertion both signed, RSA-SHA256.
    return [(rid, scenario.signer.response(sp, email=EMAIL, request_id=rid, sign_response=True)) for rid in request_ids]


def _cpu(function: Callable[[], object]) -> float:
    begin = time.process_time()
    function()
    return time.process_time() - begin


def _round(app, client, scenario: Scenario, batch: list[tuple[str, str]], *, record: bool) -> None:
    """One round over ``batch``: each response through the app (ACS, then /sso/finish), and right
    after it bare is_valid on the same response, with the library's defaults and with our cached
    schema. Interleaved one by one, so that a change in the machine's load hits both sides."""
    request_data = request_data_for(scenario.acs_url)
    ours = finish = library = cached = 0.0
    for rid, saml in batch:
        body = urlencode({"SAMLResponse": saml})  # the browser's encoding, before the clock starts
        client.delete_cookie("__Host-portal_session", domain="sso.bench")  # a browser signing in afresh
        begin = time.process_time()
        response = client.post(
            f"/saml/{scenario.connection_id}/acs",
            data=body,
            content_type="application/x-www-form-urlencoded",
            base_url=BASE_URL,
        )
        ours += time.process_time() - begin
        assert response.status_code == 303, response.get_data(as_text=True)[:300]
        begin = time.process_time()
        finished = client.get(response.location, base_url=BASE_URL)
        finish += time.process_time() - begin
        assert finished.status_code == 302, finished.get_data(as_text=True)[:300]

        def bare(rid: str = rid, saml: str = saml) -> None:
            assert OneLogin_Saml2_Response(scenario.settings, saml).is_valid(
                request_data, request_id=rid, raise_exceptions=True
            )

        with app.test_request_context(base_url=BASE_URL):
            with library_defaults():
                library += _cpu(bare)
            cached += _cpu(bare)
    if record:
        count = len(batch)
        scenario.ours.append(ours / count)
        scenario.finish.append(finish / count)
        scenario.bare.append(library / count)
        scenario.cached.append(cached / count)


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:6.2f} ms"


def _ratio(ours: list[float], base: list[float]) -> float:
    """Median over the rounds of ours / baseline (each pair measured in the same round)."""
    return statistics.median(o / b for o, b in zip(ours, base, strict=True))


def _verdict(ratio: float) -> str:
    return "meets the aim" if ratio <= AIM else "meets" if ratio <= TARGET else "MISSES"


def bench_acs(app, idp: TestIdP, count: int, rounds: int) -> None:
    with app.app_context():
        scenarios = _scenarios(idp)
        db.session.commit()
        per_round = max(1, count // rounds)
        batches = {
            scenario.label: [_responses(scenario, per_round, f"r{n}") for n in range(rounds + 1)]
            for scenario in scenarios
        }
    client = app.test_client()
    client.set_cookie("__Host-sso_binding", BINDING, domain="sso.bench")
    for n in range(rounds + 1):  # round 0 warms up (caches, statements, connections)
        for scenario in scenarios:
            _round(app, client, scenario, batches[scenario.label][n], record=n > 0)

    print(
        f"ACS, {per_round * rounds} responses per connection in {rounds} rounds "
        "(Response + Assertion signed, RSA-SHA256); CPU time per sign-in, medians of the rounds"
    )
    print(f"  {'connection':38} {'full ACS':>9} {'+finish':>9} {'bare is_valid':>13} {'cached':>9}")
    for s in scenarios:
        both = [a + b for a, b in zip(s.ours, s.finish, strict=True)]
        print(f"  {s.label:38} {_ms(s.ours):>9} {_ms(both):>9} {_ms(s.bare):>13} {_ms(s.cached):>9}")
    print(f"  ratio to bare is_valid (library defaults), target <= {TARGET}x, aim {AIM}x:")
    for s in scenarios:
        both = [a + b for a, b in zip(s.ours, s.finish, strict=True)]
        acs, whole = _ratio(s.ours, s.bare), _ratio(both, s.bare)
        print(f"  {s.label:38} ACS {acs:4.2f}x ({_verdict(acs)});  ACS + /sso/finish {whole:4.2f}x ({_verdict(whole)})")
    flat = [statistics.median(s.ours) for s in scenarios]
    print(f"  flat? full ACS with 5 certificates / with 1: {max(flat[1:]) / flat[0]:4.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--responses", type=int, default=300, help="per connection, over all rounds")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(tmp)
        print(f"database: {database_label(app)}")
        idp = TestIdP.create()
        bench_acs(app, idp, args.responses, args.rounds)


if __name__ == "__main__":
    main()
