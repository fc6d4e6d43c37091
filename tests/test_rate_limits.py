"""Rate limits at every anonymous door (issue 9, item 6): 429 with Retry-After and a stable code,
lock-outs per (email, address) with backoff, looser ceilings per address and per email, refusals
counted at the ACS (not successes), pending sign-ins capped per browser, password hashing
bounded per worker, and the optional Redis store."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import uuid

import pytest

from app.extensions import db
from app.models import RateLimitCounter
from app.services import rate_limits
from app.timeutil import utcnow
from app.views.limits import _hash_slots
from tests.helpers.signin import post_acs, post_sso_start, sso_sign_in
from tests.helpers.web import another_browser, csrf_from
from tests.test_app_auth import authorize

PASSWORD = "correct horse battery staple"
EMAIL = "pw@acme.example"


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """The limiter's clock, frozen (a test must not straddle two fixed windows) and movable."""
    now = {"at": utcnow()}
    monkeypatch.setattr(rate_limits, "utcnow", lambda: now["at"])
    return now


@pytest.fixture
def pw_user(acme, make_user):
    return make_user(acme["account"], EMAIL, "admin", password=PASSWORD)


def browser_at(app, address: str):
    browser = another_browser(app)
    browser.environ_base["REMOTE_ADDR"] = address
    return browser


def password_attempt(browser, password: str, email: str = EMAIL):
    return browser.post(
        "/login/password", data={"email": email, "password": password, "csrf_token": csrf_from(browser)}
    )


def assert_limited(response, code: str, status: int = 429) -> int:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert code in response.get_data(as_text=True)
    return int(response.headers["Retry-After"])


def test_a_locked_out_pair_does_not_lock_the_email_out_elsewhere(app, pw_user):
    attacker, owner = browser_at(app, "198.51.100.1"), browser_at(app, "198.51.100.2")
    for _ in range(app.config["PASSWORD_MAX_FAILURES"]):
        assert password_attempt(attacker, "guess").status_code == 401
    assert assert_limited(password_attempt(attacker, PASSWORD), "LOGIN_RATE_LIMITED") == 900
    assert password_attempt(owner, PASSWORD).status_code == 302


def test_each_lock_out_lasts_twice_as_long_as_the_one_before(app, pw_user, clock):
    attacker = browser_at(app, "198.51.100.1")
    waits = []
    for _ in range(3):
        for _ in range(app.config["PASSWORD_MAX_FAILURES"]):
            assert password_attempt(attacker, "guess").status_code == 401
        waits.append(assert_limited(password_attempt(attacker, "guess"), "LOGIN_RATE_LIMITED"))
        # Still locked a second before the end, free after it.
        clock["at"] += dt.timedelta(seconds=waits[-1] - 1)
        assert_limited(password_attempt(attacker, PASSWORD), "LOGIN_RATE_LIMITED")
        clock["at"] += dt.timedelta(seconds=2)
    assert waits == [900, 1800, 3600]
    assert password_attempt(attacker, PASSWORD).status_code == 302


def test_successes_do_not_count(app, pw_user):
    browser = browser_at(app, "198.51.100.3")
    for _ in range(app.config["PASSWORD_MAX_FAILURES"] + 3):
        assert password_attempt(browser, PASSWORD).status_code == 302


def test_one_address_trying_many_emails_meets_the_address_ceiling(app, pw_user, monkeypatch):
    monkeypatch.setitem(app.config, "PASSWORD_MAX_PER_ADDRESS", 8)
    sprayer = browser_at(app, "198.51.100.4")
    for number in range(8):
        assert password_attempt(sprayer, "guess", email=f"user{number}@acme.example").status_code == 401
    assert_limited(password_attempt(sprayer, PASSWORD), "LOGIN_RATE_LIMITED")
    assert password_attempt(browser_at(app, "198.51.100.5"), PASSWORD).status_code == 302


def test_many_addresses_guessing_one_email_meet_the_email_ceiling(app, pw_user, monkeypatch):
    monkeypatch.setitem(app.config, "PASSWORD_MAX_PER_EMAIL", 6)
    for number in range(6):
        assert password_attempt(browser_at(app, f"203.0.113.{number}"), "guess").status_code == 401
    assert_limited(password_attempt(browser_at(app, "203.0.113.200"), "guess"), "LOGIN_RATE_LIMITED")


def test_a_full_set_of_hashing_slots_answers_503_at_once_without_spending_a_guess(app, pw_user):
    browser = browser_at(app, "198.51.100.6")
    csrf = csrf_from(browser)
    slots = _hash_slots(app)
    taken = 0
    while slots.acquire(blocking=False):
        taken += 1
    assert taken == app.config["PASSWORD_HASH_CONCURRENCY"]
    try:
        for _ in range(app.config["PASSWORD_MAX_FAILURES"] + 2):
            busy = browser.post("/login/password", data={"email": EMAIL, "password": "guess", "csrf_token": csrf})
            assert assert_limited(busy, "SERVER_BUSY", status=503) == 1
    finally:
        for _ in range(taken):
            slots.release()
    assert password_attempt(browser, PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("method", "path", "extra"),
    [
        ("get", "/sso/start", {"query_string": {"email": "nobody@acme.example"}}),
        ("get", "/saml/{connection}/metadata", {}),
        ("post", "/api/v1/token", {"data": {"grant_type": "authorization_code", "code": "x"}}),
    ],
)
def test_anonymous_doors_limit_each_address(app, acme, monkeypatch, method, path, extra):
    monkeypatch.setitem(app.config, "ANONYMOUS_REQUESTS_PER_MINUTE", 3)
    url = path.format(connection=acme["connection"].id)
    busy, other = browser_at(app, "192.0.2.1"), browser_at(app, "192.0.2.2")
    for _ in range(3):
        assert getattr(busy, method)(url, **extra).status_code != 429
    response = getattr(busy, method)(url, **extra)
    assert 1 <= assert_limited(response, "RATE_LIMITED") <= 60
    if url.startswith("/api/"):
        assert response.json["code"] == "RATE_LIMITED"
    assert getattr(other, method)(url, **extra).status_code != 429


def test_app_authorize_is_limited_per_address_and_per_email(app, acme, monkeypatch):
    monkeypatch.setitem(app.config, "SSO_STARTS_PER_EMAIL_PER_MINUTE", 2)
    for number in range(2):
        assert authorize(browser_at(app, f"192.0.2.{10 + number}")).status_code == 302
    assert_limited(authorize(browser_at(app, "192.0.2.30")), "RATE_LIMITED")
    assert authorize(browser_at(app, "192.0.2.30"), login_hint="agent@acme.example").status_code == 302


def test_the_acs_counts_refusals_not_successes(app, acme, idp, monkeypatch):
    monkeypatch.setitem(app.config, "ANONYMOUS_REQUESTS_PER_MINUTE", 4)
    connection = acme["connection"]
    for _ in range(3):  # three sign-ins (each an SSO start and an ACS post) take no ACS place
        sso_sign_in(another_browser(app), idp, connection, "admin@acme.example")
    garbage = another_browser(app)
    for _ in range(4):
        assert post_acs(garbage, connection, "not a response").status_code == 400
    assert_limited(post_acs(garbage, connection, "not a response"), "RATE_LIMITED")


def test_pending_sign_ins_are_capped_per_browser(app, acme, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_PENDING_REQUESTS_PER_BROWSER", 3)
    browser = another_browser(app)
    for _ in range(3):
        assert authorize(browser).status_code == 302
    assert_limited(authorize(browser), "TOO_MANY_PENDING_SIGNINS")
    assert_limited(post_sso_start(browser, "admin@acme.example"), "TOO_MANY_PENDING_SIGNINS")
    assert authorize(another_browser(app)).status_code == 302


def test_old_windows_of_the_same_key_do_not_count(app, pw_user):
    """Only the current window counts: old rows of the key are history, for the purge to remove."""
    key = rate_limits.counter_key("auth.password_login:email+address", f"{EMAIL}|198.51.100.7")
    old = utcnow() - dt.timedelta(hours=2)
    db.session.add_all(
        RateLimitCounter(key=key, window_start=old - dt.timedelta(minutes=15 * n), count=99, expires_at=old)
        for n in range(50)
    )
    db.session.commit()
    assert password_attempt(browser_at(app, "198.51.100.7"), PASSWORD).status_code == 302


# --- the optional Redis store -------------------------------------------------------------------

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def redis_store():
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        pytest.skip(f"Redis at {REDIS_URL} is not reachable ({exc.__class__.__name__}): the database store is tested")
    store = rate_limits.RedisStore(REDIS_URL)
    yield store
    client = redis.Redis.from_url(REDIS_URL)
    for name in client.scan_iter("rl:*"):
        client.delete(name)


def test_redis_counts_atomically_across_threads(redis_store):
    key, start = f"test:{uuid.uuid4()}", rate_limits.window_start(utcnow(), 60)
    results: list[int] = []
    lock = threading.Lock()

    def hit() -> None:
        count = redis_store.increment(key, start, start + dt.timedelta(seconds=60))
        with lock:
            results.append(count)

    threads = [threading.Thread(target=hit) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(1, 41))
    redis_store.decrement(key, start)
    assert redis_store.increment(key, start, start + dt.timedelta(seconds=60)) == 40


def test_the_password_door_works_on_redis(app, pw_user, redis_store, monkeypatch):
    monkeypatch.setitem(app.extensions, "rate_limit_store", redis_store)
    attacker = browser_at(app, f"198.51.100.{secrets.randbelow(200) + 20}")
    for _ in range(app.config["PASSWORD_MAX_FAILURES"]):
        assert password_attempt(attacker, "guess").status_code == 401
    assert assert_limited(password_attempt(attacker, PASSWORD), "LOGIN_RATE_LIMITED") == 900
    assert db.session.query(RateLimitCounter).filter(RateLimitCounter.key.like("auth.%")).count() == 0
    assert password_attempt(browser_at(app, "198.51.100.250"), PASSWORD).status_code == 302


def test_an_unreachable_redis_answers_503_not_500_and_not_unguarded(app, pw_user, monkeypatch):
    monkeypatch.setitem(app.extensions, "rate_limit_store", rate_limits.RedisStore("redis://127.0.0.1:1/0"))
    response = password_attempt(browser_at(app, "198.51.100.8"), PASSWORD)
    assert assert_limited(response, "SERVER_BUSY", status=503) == 5


def test_every_anonymous_door_is_rate_limited(app):
    """Each endpoint that a stranger can reach without a session and that starts or finishes a
    sign-in, or answers SAML, is in the door table (a new one must be added there)."""
    anonymous = {
        "auth.sso_start",
        "auth.sso_start_page",
        "auth.sso_finish",
        "auth.password_login",
        "app_auth.authorize",
        "app_auth.start",
        "api.token",
        "saml.acs",
        "saml.metadata",
        "slo.sls",
    }
    assert anonymous <= set(app.view_functions)
    assert anonymous <= set(rate_limits.DOORS)
