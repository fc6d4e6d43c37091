"""ACS and session-lookup benchmark. Prints each figure beside its baseline from the same run.

    .venv/bin/python bench/acs.py [--responses 300] [--lookups 3000]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1/test .venv/bin/python bench/acs.py

1. Full ACS requests per second through the app (base64 + XML guard, python3-saml validation,
   our checks, pending-request consume + replay-cache insert, user lookup, sign-in result insert,
   303) against the bare ``OneLogin_Saml2_Response.is_valid`` on the same kind of response; and
   the same-site finishing request that follows it (claim the result, session insert, redirect).
2. Median cost of ``GET /api/v1/me`` with a live session against the same route without one,
   and the median of the session lookup itself.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from urllib.parse import urlencode

from _shared import BASE_URL, build_app, enabled_okta_connection, median_ms  # first: puts the repository on sys.path
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from app.extensions import db
from app.models import PendingRequest
from app.saml.core import binding_hash, saml_settings
from app.saml.urls import request_data_for, sp_values
from app.sessions import create_session, find_live_app_session, find_live_session
from app.timeutil import utcnow
from tests.saml_idp import TestIdP

#: The library's own validator, captured before create_app installs the cached-schema one.
LIBRARY_VALIDATE_XML = OneLogin_Saml2_XML.validate_xml

BINDING = "bench-browser-binding-value-0123456789"
EMAIL = "bench@acme.example"


def bench_acs(app, idp: TestIdP, count: int) -> None:
    with app.app_context():
        _user, connection = enabled_okta_connection(idp, EMAIL)
        db.session.commit()
        sp = sp_values(connection).as_dict()
        now = utcnow()
        request_ids = [f"_bench{i:06d}" for i in range(count)]
        db.session.add_all(
            PendingRequest(
                id=rid,
                connection_id=connection.id,
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
        responses = [idp.response(sp, email=EMAIL, request_id=rid, sign_response=True) for rid in request_ids]
        # The browser form-encodes the POST body; do that before the clock starts.
        bodies = [urlencode({"SAMLResponse": saml}) for saml in responses]
        settings = saml_settings(connection)
        connection_id = connection.id

    client = app.test_client()
    client.set_cookie("__Host-sso_binding", BINDING, domain="sso.bench")
    full = finishing = 0.0
    for body in bodies:
        client.delete_cookie("__Host-portal_session", domain="sso.bench")  # a browser signing in afresh
        start = time.perf_counter()
        response = client.post(
            f"/saml/{connection_id}/acs",
            data=body,
            content_type="application/x-www-form-urlencoded",
            base_url=BASE_URL,
        )
        full += time.perf_counter() - start
        assert response.status_code == 303, response.get_data(as_text=True)[:300]
        start = time.perf_counter()
        finished = client.get(response.location, base_url=BASE_URL)
        finishing += time.perf_counter() - start
        assert finished.status_code == 302, finished.get_data(as_text=True)[:300]

    request_data = request_data_for(sp["acs_url"])
    cached_validate_xml = OneLogin_Saml2_XML.validate_xml

    def bare(validate_xml) -> float:
        OneLogin_Saml2_XML.validate_xml = validate_xml
        try:
            begin = time.perf_counter()
            for saml, rid in zip(responses, request_ids, strict=True):
                assert OneLogin_Saml2_Response(settings, saml).is_valid(
                    request_data, request_id=rid, raise_exceptions=True
                )
            return time.perf_counter() - begin
        finally:
            OneLogin_Saml2_XML.validate_xml = cached_validate_xml

    with app.test_request_context(base_url=BASE_URL):
        library = bare(LIBRARY_VALIDATE_XML)
        library_cached = bare(cached_validate_xml)

    print(f"ACS, {count} responses (Response + Assertion signed, RSA-SHA256)")
    print(f"  full ACS request through the app     {count / full:8.1f} req/s   ({full / count * 1000:.2f} ms each)")
    print(
        f"  baseline: bare is_valid (library)    {count / library:8.1f} /s       ({library / count * 1000:.2f} ms each)"
    )
    print(
        f"  for reference: is_valid with cached  {count / library_cached:8.1f} /s       ({library_cached / count * 1000:.2f} ms each)"
    )
    print(
        f"  then the same-site /sso/finish        {count / finishing:8.1f} req/s   ({finishing / count * 1000:.2f} ms each)"
    )
    verdict = "meets" if full <= library else "MISSES"
    print(f"  -> full request / bare library = {library / full:.2f}x the speed ({verdict} the target of >= 1.0x)")


def bench_me(app, count: int) -> None:
    """GET /api/v1/me with an app's bearer token (the hot path) and with the portal's cookie,
    beside the same route without a session, and the two lookups alone."""
    with app.app_context():
        from app.services.users import find_user_by_email

        user = find_user_by_email(EMAIL)
        cookie_token = create_session(user, app_name="portal", ip=None, user_agent=None).token
        bearer_token = create_session(user, app_name="desktop", ip=None, user_agent=None).token
        db.session.commit()
    cookie = app.test_client()
    cookie.set_cookie("__Host-portal_session", cookie_token, domain="sso.bench")
    anonymous = app.test_client()
    headers = {"Authorization": f"Bearer {bearer_token}"}

    def timed(client, expected: int, **kwargs) -> list[float]:
        samples = []
        for _ in range(count):
            begin = time.perf_counter()
            response = client.get("/api/v1/me", base_url=BASE_URL, **kwargs)
            samples.append(time.perf_counter() - begin)
            assert response.status_code == expected
        return samples

    timed(anonymous, 200, headers=headers)  # warm-up
    timed(cookie, 200)
    with_bearer = timed(anonymous, 200, headers=headers)
    with_cookie = timed(cookie, 200)
    without = timed(anonymous, 401)
    with app.app_context():
        lean, orm = [], []
        for _ in range(count):
            begin = time.perf_counter()
            assert find_live_app_session(bearer_token, ("desktop", "mobile")) is not None
            lean.append(time.perf_counter() - begin)
            db.session.remove()
            begin = time.perf_counter()
            assert find_live_session(cookie_token, app_name="portal") is not None
            orm.append(time.perf_counter() - begin)
            db.session.remove()
    base = median_ms(without)
    print(f"\nGET /api/v1/me, {count} requests each (median)")
    print(f"  baseline: same route, no session     {base:6.3f} ms")
    print(
        f"  with an app's bearer token           {median_ms(with_bearer):6.3f} ms  "
        f"(+{(median_ms(with_bearer) - base) * 1000:.0f} us; target +300 us)"
    )
    print(
        f"  with the portal's cookie             {median_ms(with_cookie):6.3f} ms  (+{(median_ms(with_cookie) - base) * 1000:.0f} us)"
    )
    print(f"  bearer lookup alone (Core, values)   {median_ms(lean):6.3f} ms")
    print(f"  cookie lookup alone (ORM entities)   {median_ms(orm):6.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--responses", type=int, default=300)
    parser.add_argument("--lookups", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(tmp)
        print(f"database: {app.config['SQLALCHEMY_DATABASE_URI'].split('@')[-1]}")
        idp = TestIdP.create()
        bench_acs(app, idp, args.responses)
        bench_me(app, args.lookups)


if __name__ == "__main__":
    main()
