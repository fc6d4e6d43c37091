"""Rules that live in one place: ids in URLs, the session slide's transaction, test state and
password failures kept as state rather than read back from the audit log."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.routing import IntegerConverter

from app.extensions import db
from app.models import Account, AuditEvent, RateLimitCounter, UserSession
from app.services.accounts import sso_ready_connection
from app.sessions import create_session, find_live_session
from app.views.converters import IdConverter
from tests.helpers.web import log_in

TWENTY_DIGITS = "9" * 20


def _id_routes(app: Flask) -> list[tuple[str, str, list[str]]]:
    """(rule, method, id argument names) for every route that takes a database id."""
    routes = []
    for rule in app.url_map.iter_rules():
        ids = [name for name, converter in rule._converters.items() if isinstance(converter, IdConverter)]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if ids:
                routes.append((rule.rule, method, ids))
    return routes


def test_every_integer_in_a_url_is_a_bounded_id(app: Flask) -> None:
    """No route takes a plain ``int``: the only integer converter is the bounded id."""
    plain = [
        rule.rule
        for rule in app.url_map.iter_rules()
        for converter in rule._converters.values()
        if isinstance(converter, IntegerConverter) and not isinstance(converter, IdConverter)
    ]
    assert plain == []
    assert len(_id_routes(app)) >= 20


@pytest.mark.parametrize("value", [TWENTY_DIGITS, "2147483648", "0"])
def test_out_of_range_ids_are_404_everywhere(app, client, acme, make_user, value) -> None:
    """Signed in as staff and as the account's admin, every id route answers 404, never 500."""
    staff = make_user(acme["account"], "helpdesk@phoneco.example", "admin,support")
    log_in(client, staff)
    checked = 0
    for rule, method, _ids in _id_routes(app):
        path = re.sub(r"<id:[a-z_]+>", value, rule)
        path = re.sub(r"<[a-z_]+>", "file", path)  # the import method, the only other argument
        response = client.open(path, method=method)
        assert response.status_code == 404, (method, path, response.status_code)
        checked += 1
    assert checked >= 20


def test_sliding_a_session_commits_nothing_else(app, acme) -> None:
    """The slide is its own transaction: what the request has pending stays the request's."""
    app.config["SESSION_TOUCH_INTERVAL_SECONDS"] = 0
    try:
        new = create_session(acme["admin"], app_name="portal", ip=None, user_agent=None)
        db.session.commit()
        with app.test_request_context("/"):
            db.session.add(Account(slug="pending-only", name="Never committed"))
            before = new.session.expires_at
            assert find_live_session(new.token) is not None
            db.session.rollback()
    finally:
        app.config["SESSION_TOUCH_INTERVAL_SECONDS"] = 300
    assert db.session.scalar(select(Account).where(Account.slug == "pending-only")) is None
    slid = db.session.scalar(select(UserSession.expires_at).where(UserSession.id == new.session.id))
    assert slid > before


def test_password_failures_are_counted_in_their_own_table(client, csrf_token, acme, make_user) -> None:
    """The rate limit reads one counter row, not the audit log: deleting the audit trail does
    not reset it."""
    make_user(acme["account"], "pw@acme.example", "admin", password="correct horse battery")
    for _ in range(5):
        response = client.post(
            "/login/password", data={"email": "pw@acme.example", "password": "wrong", "csrf_token": csrf_token()}
        )
        assert response.status_code == 401
    db.session.execute(AuditEvent.__table__.delete())
    db.session.commit()
    response = client.post(
        "/login/password",
        data={"email": "pw@acme.example", "password": "correct horse battery", "csrf_token": csrf_token()},
    )
    assert response.status_code == 429
    # Five failures and the refused sixth attempt, which took its place before it was refused.
    assert db.session.scalar(select(func.max(RateLimitCounter.count))) == 6


def test_test_state_is_kept_on_the_connection(client, acme) -> None:
    """Whether a connection passed a test is a column; the audit log can be purged."""
    connection = acme["connection"]
    connection.signin_test_passed_at = connection.created_at
    db.session.execute(AuditEvent.__table__.delete())
    db.session.commit()
    assert sso_ready_connection(acme["account"]) == connection
