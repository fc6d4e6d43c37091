"""Single Logout and encrypted-assertion benchmark (issue 12). Each figure beside its baseline.

    .venv/bin/python bench/slo.py [--responses 200] [--sessions 1000] [--background 100000] [--repeat 10]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1/scratch .venv/bin/python bench/slo.py

1. The full ACS request with an encrypted assertion (RSA-OAEP + AES-256-GCM, signed inside) beside
   the same kind of assertion unencrypted, in one run, on one connection set to ``accept``.
2. One IdP-initiated LogoutRequest (HTTP-Redirect, signed) ending the 1,000 sessions of one person
   (web, desktop, mobile, all through that connection) among ``--background`` other sessions: the
   whole request (signature, checks, replay cache, one UPDATE, audit, signed LogoutResponse), beside
   ``revoke_sessions_for_user`` on the same 1,000 sessions (one UPDATE + audit).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from urllib.parse import urlencode

from _shared import BASE_URL, analyze, build_app, bulk_load, database_label, enabled_okta_connection, median_ms
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import PendingRequest, User, UserSession
from app.saml import active_encryption_keys, sp_values
from app.saml.core import binding_hash
from app.services.connections import update_connection_options
from app.sessions import hash_token, revoke_sessions_for_user
from app.timeutil import utcnow
from tests.saml_idp import TestIdP

BINDING = "bench-browser-binding-value-0123456789"
EMAIL = "bench@acme.example"


def setup_connection(idp: TestIdP) -> int:
    _user, connection = enabled_okta_connection(idp, EMAIL)
    connection.idp_slo_url = "https://idp.example.test/slo"
    connection.settings = {"signed_element": "assertion"}
    update_connection_options(connection, single_logout=True, encrypt_assertions="accept")
    db.session.commit()
    return connection.id


def bench_acs(app, idp: TestIdP, connection_id: int, count: int) -> None:
    with app.app_context():
        from app.models import IdpConnection

        connection = db.session.get(IdpConnection, connection_id)
        sp = sp_values(connection).as_dict()
        encryption_cert = active_encryption_keys(connection)[0].certificate
        now = utcnow()
        ids = {kind: [f"_bench_{kind}_{i:06d}" for i in range(count)] for kind in ("plain", "encrypted")}
        db.session.add_all(
            PendingRequest(
                id=rid,
                connection_id=connection_id,
                app="portal",
                next_path="/portal/",
                browser_binding_hash=binding_hash(BINDING),
                purpose="login",
                created_at=now,
                expires_at=now + dt.timedelta(days=1),
            )
            for rids in ids.values()
            for rid in rids
        )
        db.session.commit()
        bodies = {
            "plain": [
                urlencode({"SAMLResponse": idp.response(sp, email=EMAIL, request_id=rid)}) for rid in ids["plain"]
            ],
            "encrypted": [
                urlencode({"SAMLResponse": idp.response(sp, email=EMAIL, request_id=rid, encrypt_to=encryption_cert)})
                for rid in ids["encrypted"]
            ],
        }

    client = app.test_client()
    client.set_cookie("__Host-sso_binding", BINDING, domain="sso.bench")
    results = {}
    # Interleaved, so that neither kind gets a warmer cache or a fuller table than the other.
    samples: dict[str, list[float]] = {"plain": [], "encrypted": []}
    for plain, encrypted in zip(bodies["plain"], bodies["encrypted"], strict=True):
        for kind, body in (("plain", plain), ("encrypted", encrypted)):
            client.delete_cookie("__Host-portal_session", domain="sso.bench")
            begin = time.perf_counter()
            response = client.post(
                f"/saml/{connection_id}/acs",
                data=body,
                content_type="application/x-www-form-urlencoded",
                base_url=BASE_URL,
            )
            samples[kind].append(time.perf_counter() - begin)
            # 303 to /sso/finish: the ACS step (validation, decryption) is what the two kinds differ in.
            assert response.status_code == 303, response.get_data(as_text=True)[:300]
    for kind, values in samples.items():
        results[kind] = sum(values)
    print(f"ACS, {count} responses of each kind, interleaved (Assertion signed, RSA-SHA256)")
    print(
        f"  encrypted (RSA-OAEP + AES-256-GCM)   {count / results['encrypted']:8.1f} req/s   (median {median_ms(samples['encrypted']):.2f} ms)"
    )
    print(
        f"  baseline: the same, unencrypted      {count / results['plain']:8.1f} req/s   (median {median_ms(samples['plain']):.2f} ms)"
    )
    print(f"  -> decryption costs {median_ms(samples['encrypted']) - median_ms(samples['plain']):+.2f} ms per sign-in")


def populate_sessions(connection_id: int, own: int, background: int) -> list[str]:
    """``background`` sessions of other people through the same connection, then ``own`` of one person.

    The others' rows have no user (as a deleted user's rows do), so that the baseline's UPDATE by
    user touches only the person's 1,000 sessions, as the LogoutRequest's does."""
    now = utcnow()
    with db.engine.begin() as connection:
        user_id = connection.execute(select(User.id).where(User.email == EMAIL)).scalar_one()
        max_id = connection.execute(select(func.coalesce(func.max(UserSession.id), 0))).scalar_one()
    apps = ("portal", "desktop", "mobile")
    tokens = [f"bench-slo-token-{n:06d}" for n in range(own)]

    def rows():
        for n in range(background):
            yield (
                max_id + 1 + n,
                f"{n:064x}",
                None,  # other people (deleted users keep their rows too): not this user's sessions
                1,
                apps[n % 3],
                now,
                now,
                now + dt.timedelta(days=21),
                connection_id,
                f"other{n}@acme.example",
                f"idx-{n}",
            )
        for n, token in enumerate(tokens):
            yield (
                max_id + 1 + background + n,
                hash_token(token),
                user_id,
                1,
                apps[n % 3],
                now,
                now,
                now + dt.timedelta(days=21),
                connection_id,
                EMAIL,
                f"idx-own-{n}",
            )

    bulk_load(
        UserSession.__table__,
        (
            "id",
            "token_hash",
            "user_id",
            "account_id",
            "app",
            "created_at",
            "last_used_at",
            "expires_at",
            "connection_id",
            "saml_name_id",
            "saml_session_index",
        ),
        rows(),
    )
    analyze()
    return tokens


def revive(name_id: str) -> None:
    """Untimed: make the person's sessions live again for the next run."""
    with db.engine.begin() as connection:
        connection.execute(
            update(UserSession).where(UserSession.saml_name_id == name_id).values(revoked_at=None, revoked_reason=None)
        )


def bench_logout(app, idp: TestIdP, connection_id: int, own: int, background: int, repeat: int) -> None:
    with app.app_context():
        from app.models import IdpConnection

        tokens = populate_sessions(connection_id, own, background)
        sp = sp_values(db.session.get(IdpConnection, connection_id)).as_dict()
    client = app.test_client()
    slo_samples = []
    for _ in range(repeat + 1):
        with app.app_context():
            revive(EMAIL)
        message = idp.logout_message(sp, name_id=EMAIL)
        begin = time.perf_counter()
        response = client.get(f"/saml/{connection_id}/sls?{message.query_string}", base_url=BASE_URL)
        slo_samples.append(time.perf_counter() - begin)
        assert response.status_code == 302, response.get_data(as_text=True)[:300]
    slo_samples = slo_samples[1:]  # the first is the warm-up
    with app.app_context():
        still_live = db.session.scalar(
            select(func.count()).where(UserSession.saml_name_id == EMAIL, UserSession.revoked_at.is_(None))
        )
        assert still_live == 0, still_live
        others = db.session.scalar(
            select(func.count()).where(UserSession.saml_name_id != EMAIL, UserSession.revoked_at.is_(None))
        )
        assert others == background, others
    baseline = []
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == EMAIL))
        for _ in range(repeat + 1):
            revive(EMAIL)
            begin = time.perf_counter()
            revoke_sessions_for_user(user, "bench")
            db.session.commit()
            baseline.append(time.perf_counter() - begin)
    baseline = baseline[1:]
    refused = client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens[1]}"}, base_url=BASE_URL)
    print(
        f"\nIdP-initiated LogoutRequest ending {own} sessions of one person, among {background} others (median of {repeat})"
    )
    print(f"  whole GET /saml/<id>/sls request     {median_ms(slo_samples):8.2f} ms")
    print(f"  baseline: revoke_sessions_for_user   {median_ms(baseline):8.2f} ms  (same 1 UPDATE + audit, no SAML)")
    print(
        f"  -> SAML handling costs {median_ms(slo_samples) - median_ms(baseline):+.2f} ms; a revoked token next: {refused.status_code}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--responses", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--background", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(tmp)
        print(f"database: {database_label(app)}")
        idp = TestIdP.create()
        with app.app_context():
            connection_id = setup_connection(idp)
        bench_acs(app, idp, connection_id, args.responses)
        bench_logout(app, idp, connection_id, args.sessions, args.background, args.repeat)


if __name__ == "__main__":
    main()
