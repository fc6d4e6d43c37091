"""Issue 9 item 2: the ACS records a verified sign-in; the session decision happens on the
same-site ``/sso/finish`` request, which carries the portal's cookies.

A real IdP's POST to the ACS is cross-site and arrives without the portal's SameSite=Lax cookies.
The test client sends every cookie, so these tests take the cookies off the ACS POST where that
matters (``cross_site_post``); tests/browser/test_cross_site_signin.py does it in Chromium.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from app.errors import SignInError
from app.extensions import db
from app.models import AuditEvent, PendingRequest, SignInResult, UsedAssertion, UserSession
from app.saml.urls import sp_values
from app.services.signin import finish_sso_sign_in
from app.timeutil import utcnow
from tests.helpers.signin import post_acs, start_sso
from tests.helpers.web import HOST, PORTAL_COOKIE, another_browser, log_in

EMAIL = "admin@acme.example"
OTHER = "agent@acme.example"
FINISH_COOKIE = "__Host-sso_finish"
BINDING_COOKIE = "__Host-sso_binding"


def refused(response, code: str, status: int = 400) -> None:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert code.encode() in response.data
    event = db.session.query(AuditEvent).filter_by(outcome="failure").order_by(AuditEvent.id.desc()).first()
    assert event is not None and event.error_code == code


def live_sessions() -> list[UserSession]:
    db.session.expire_all()
    return [session for session in db.session.query(UserSession).all() if session.is_live()]


@contextmanager
def cross_site_post(client: FlaskClient, *names: str) -> Iterator[None]:
    """Leave the named cookies out of the requests inside, as a browser leaves SameSite=Lax cookies
    out of a cross-site POST; they are back for the next (same-site) request."""
    kept = {name: cookie.value for name in names if (cookie := client.get_cookie(name)) is not None}
    for name in kept:
        client.delete_cookie(name)
    try:
        yield
    finally:
        for name, value in kept.items():
            client.set_cookie(name, value, secure=True)


def acs_post(client: FlaskClient, connection, saml: str, **form: str):
    """The ACS's own answer, not followed."""
    return post_acs(client, connection, saml, finish=False, **form)


def token_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["r"][0]


def test_the_acs_records_the_result_and_sends_the_browser_to_the_finishing_url(client, acme, idp):
    request_id = start_sso(client, EMAIL, next_path="/portal/?tab=users")
    saml = idp.response(acme["sp"], email=EMAIL, request_id=request_id)
    with cross_site_post(client, PORTAL_COOKIE):
        response = acs_post(client, acme["connection"], saml)
    assert response.status_code == 303
    assert urlsplit(response.location).path == "/sso/finish"
    cookies = response.headers.getlist("Set-Cookie")
    finish_cookie = next(cookie for cookie in cookies if cookie.startswith(f"{FINISH_COOKIE}="))
    assert "HttpOnly" in finish_cookie and "Secure" in finish_cookie and "SameSite=Lax" in finish_cookie
    assert "Path=/" in finish_cookie and "Max-Age=120" in finish_cookie
    assert not any(cookie.startswith(f"{PORTAL_COOKIE}=") for cookie in cookies), "no session at the ACS"
    # One commit: the replay entry, the consumed pending request and the stored result.
    result = db.session.query(SignInResult).one()
    assert result.request_id == request_id and result.email == EMAIL and result.next_path == "/portal/?tab=users"
    assert result.token_hash != token_of(response.location)  # only the hash is stored
    assert db.session.query(UsedAssertion).count() == 1 and db.session.query(PendingRequest).count() == 0
    assert db.session.query(UserSession).count() == 0

    finished = client.get(response.location)
    assert finished.status_code == 302 and finished.location == "/portal/?tab=users"
    assert any(cookie.startswith(f"{PORTAL_COOKIE}=") for cookie in finished.headers.getlist("Set-Cookie"))
    assert client.get("/api/v1/me").json["email"] == EMAIL
    # Claimed in the same commit as the session: nothing left to finish again.
    assert db.session.query(SignInResult).count() == 0


def test_the_finishing_url_is_single_use(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    response = acs_post(client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id=request_id))
    assert client.get(response.location).status_code == 302
    client.set_cookie(FINISH_COOKIE, "x" * 43, secure=True)
    refused(client.get(response.location), "SIGNIN_FINISH_INVALID")
    assert len(live_sessions()) == 1


def test_the_finishing_url_in_another_browser_signs_nobody_in_and_is_used_up(app, client, acme, idp):
    """Login CSRF: an attacker finishes their own IdP sign-in up to the ACS and sends the victim
    the finishing link. The victim's browser lacks the finishing cookie."""
    request_id = start_sso(client, EMAIL)
    response = acs_post(client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id=request_id))
    victim = another_browser(app)
    refused(victim.get(response.location), "SIGNIN_FINISH_INVALID")
    assert db.session.query(UserSession).count() == 0
    # Used up: the link cannot be tried again, even from the browser it was made for.
    refused(client.get(response.location), "SIGNIN_FINISH_INVALID")


def test_an_expired_result_is_refused(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    response = acs_post(client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id=request_id))
    db.session.query(SignInResult).update({"expires_at": utcnow() - dt.timedelta(seconds=1)})
    db.session.commit()
    refused(client.get(response.location), "SIGNIN_FINISH_INVALID")
    assert db.session.query(UserSession).count() == 0


def test_a_malformed_or_missing_token_is_refused(client):
    refused(client.get("/sso/finish"), "SIGNIN_FINISH_INVALID")
    refused(client.get("/sso/finish", query_string={"r": "é" * 5}), "SIGNIN_FINISH_INVALID")
    refused(client.get("/sso/finish", query_string={"r": "a" * 5000}), "SIGNIN_FINISH_INVALID")


def test_a_user_deactivated_since_the_acs_is_refused_at_the_finish(client, acme, idp):
    request_id = start_sso(client, EMAIL)
    response = acs_post(client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id=request_id))
    acme["admin"].status = "deactivated"
    db.session.commit()
    refused(client.get(response.location), "USER_DEACTIVATED", 403)
    assert db.session.query(UserSession).count() == 0


def test_a_binding_cookie_left_out_of_the_cross_site_post_is_checked_at_the_finish(client, acme, idp):
    """On http (SameSite=Lax binding cookie) or in a browser that drops SameSite=None cookies, the
    ACS POST comes without the binding cookie: the same-site finishing request checks it."""
    request_id = start_sso(client, EMAIL)
    saml = idp.response(acme["sp"], email=EMAIL, request_id=request_id)
    with cross_site_post(client, BINDING_COOKIE, PORTAL_COOKIE):
        response = acs_post(client, acme["connection"], saml)
    assert response.status_code == 303
    assert db.session.query(SignInResult).one().request_binding_hash is not None
    assert client.get(response.location).status_code == 302
    assert client.get("/api/v1/me").json["email"] == EMAIL


def test_a_response_posted_from_another_browser_is_refused_at_the_finish(app, client, acme, idp):
    """A stolen response for someone's pending request, posted from the attacker's browser (which
    has no binding cookie to send): the ACS cannot tell, the finishing request can."""
    request_id = start_sso(client, EMAIL)
    attacker = another_browser(app)
    saml = idp.response(acme["sp"], email=EMAIL, request_id=request_id)
    response = post_acs(attacker, acme["connection"], saml)
    refused(response, "SAML_IN_RESPONSE_TO_MISMATCH")
    assert db.session.query(UserSession).count() == 0


def test_idp_initiated_response_for_someone_else_is_refused_and_the_session_stays(
    client, make_account, make_connection, make_user, idp
):
    account = make_account()
    connection = make_connection(account, allow_idp_initiated=True)
    alice = make_user(account, EMAIL)
    make_user(account, OTHER, "agent,admin")
    log_in(client, alice)
    alice_session = live_sessions()[0]
    saml = idp.response(sp_values(connection).as_dict(), email=OTHER, request_id=None)
    with cross_site_post(client, PORTAL_COOKIE):
        response = acs_post(client, connection, saml)
    assert response.status_code == 303  # the ACS could not see the session; the finish can
    finished = client.get(response.location)
    refused(finished, "SAML_SESSION_CONFLICT", 409)
    page = finished.get_data(as_text=True)
    assert 'action="/logout"' in page and "Sign out first" in page and 'name="csrf_token"' in page
    assert [session.id for session in live_sessions()] == [alice_session.id]
    assert client.get("/api/v1/me").json["email"] == EMAIL
    # The button works: it signs Alice out (and nobody in).
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert live_sessions() == []


def test_idp_initiated_response_for_the_same_person_renews_the_session(
    client, make_account, make_connection, make_user, idp
):
    account = make_account()
    connection = make_connection(account, allow_idp_initiated=True)
    alice = make_user(account, EMAIL)
    log_in(client, alice)
    old = live_sessions()[0]
    saml = idp.response(sp_values(connection).as_dict(), email=EMAIL, request_id=None)
    with cross_site_post(client, PORTAL_COOKIE):
        response = acs_post(client, connection, saml, RelayState="/portal/?tab=me")
    response = client.get(response.location)
    assert response.status_code == 302 and response.location == "/portal/?tab=me"
    (new,) = live_sessions()
    assert new.id != old.id
    db.session.refresh(old)
    assert old.revoked_reason == "replaced_at_signin"


def test_a_fresh_sign_in_revokes_the_old_session_of_this_browser(client, acme, idp, make_user):
    """An SP-initiated sign-in is the person's own choice: it may switch this browser to them."""
    log_in(client, make_user(acme["account"], "second-admin@acme.example", "admin"))
    old = live_sessions()[0]
    request_id = start_sso(client, EMAIL)
    with cross_site_post(client, PORTAL_COOKIE):
        response = acs_post(client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id=request_id))
    assert client.get(response.location).status_code == 302
    (new,) = live_sessions()
    assert new.user_id == acme["admin"].id
    db.session.refresh(old)
    assert old.revoked_reason == "replaced_at_signin"


def test_a_refusal_after_validation_keeps_the_response_used(client, acme, idp):
    """USER_NOT_FOUND is raised after the replay entry was written: it is committed all the same,
    so that the response cannot be replayed once the user exists."""
    saml = idp.response(acme["sp"], email="ghost@acme.example", request_id=None)
    acme["connection"].allow_idp_initiated = True
    db.session.commit()
    refused(post_acs(client, acme["connection"], saml), "USER_NOT_FOUND", 403)
    assert db.session.query(UsedAssertion).count() == 1
    refused(post_acs(client, acme["connection"], saml), "SAML_REPLAY")


def test_two_requests_finishing_one_result_at_once_sign_in_once(app, client, acme, idp):
    """Two workers get the same finishing request: the claim (a DELETE) lets exactly one through."""
    request_id = start_sso(client, EMAIL)
    response = acs_post(client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id=request_id))
    token = token_of(response.location)
    secret = client.get_cookie(FINISH_COOKIE).value
    binding = client.get_cookie(BINDING_COOKIE).value
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        with app.test_request_context("/sso/finish", base_url=f"https://{HOST}"):
            barrier.wait()
            try:
                finish_sso_sign_in(
                    token, browser_secret=secret, browser_binding=binding, current=None, ip=None, user_agent=None
                )
                db.session.commit()
                outcomes.append("ok")
            except SignInError as err:
                db.session.commit()
                outcomes.append(err.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["SIGNIN_FINISH_INVALID", "ok"]
    assert db.session.query(UserSession).count() == 1


def _finish_in_worker(database_uri: str, location: str, cookies: dict[str, str], barrier, results) -> None:
    """One gunicorn-style worker: its own process, app and database connections."""
    from app import create_app
    from config import TestingConfig

    worker_app = create_app(
        type("WorkerConfig", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": database_uri, "BASE_URL": f"https://{HOST}"})
    )
    with worker_app.app_context():
        browser = another_browser(worker_app)
        for name, value in cookies.items():
            browser.set_cookie(name, value, secure=True)
        barrier.wait(timeout=30)
        results.put(browser.get(location).status_code)
        db.engine.dispose()


@pytest.mark.postgres
def test_one_finishing_request_wins_across_worker_processes(app, client, acme, idp):
    """Four worker processes receive the same finishing request at once: one session, three refusals."""
    request_id = start_sso(client, EMAIL)
    response = acs_post(client, acme["connection"], idp.response(acme["sp"], email=EMAIL, request_id=request_id))
    cookies = {name: client.get_cookie(name).value for name in (FINISH_COOKIE, BINDING_COOKIE)}
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    workers = [
        context.Process(
            target=_finish_in_worker,
            args=(app.config["SQLALCHEMY_DATABASE_URI"], response.location, cookies, barrier, results),
        )
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    statuses = sorted(results.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
    assert statuses == [302, 400, 400, 400]
    db.session.expire_all()
    assert db.session.query(UserSession).count() == 1 and db.session.query(SignInResult).count() == 0
