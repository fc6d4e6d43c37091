"""The session check every request makes: one statement, no ORM objects, and a connection cut a
moment ago (which the pool no longer pings) costs no failed request."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import event

from app.extensions import db
from app.models import Account, User, UserSession
from tests.conftest import TEST_DATABASE_URL
from tests.helpers.web import app_session, bearer, log_in

TERMINATE_OTHERS = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def _statements_of(client, path: str, **kwargs) -> tuple[int, list[str]]:
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        status = client.get(path, **kwargs).status_code
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return status, statements


@pytest.mark.parametrize("credential", ["bearer", "cookie"])
def test_the_session_check_is_one_statement_and_builds_no_orm_objects(client, acme, credential):
    if credential == "bearer":
        kwargs = {"headers": bearer(app_session(acme["agent"]).token)}
    else:
        log_in(client, acme["admin"])
        kwargs = {}
    db.session.expunge_all()
    status, statements = _statements_of(client, "/api/v1/me", **kwargs)
    assert status == 200
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("SELECT"), statements
    loaded = [type(row).__name__ for row in db.session.identity_map.values()]
    assert not [name for name in loaded if name in (UserSession.__name__, User.__name__, Account.__name__)], loaded


def test_pages_that_need_the_rows_still_get_them(client, acme):
    """The portal's home page shows the account (an ORM row) and the session's times."""
    log_in(client, acme["admin"])
    page = client.get("/portal/")
    assert page.status_code == 200
    assert acme["admin"].account.name in page.get_data(as_text=True)


def _cut_every_connection() -> int:
    with psycopg.connect(TEST_DATABASE_URL.replace("postgresql+psycopg://", "postgresql://", 1)) as connection:
        connection.autocommit = True
        return connection.execute(TERMINATE_OTHERS).fetchone()[0]


def _watch(_conn, _cursor, _statement, *_args) -> None:
    """A statement listener (as a tracer has): the lookup then takes SQLAlchemy's ordinary path."""


@pytest.mark.postgres
@pytest.mark.parametrize("watched", [False, True], ids=["direct", "core"])
def test_a_connection_cut_a_moment_ago_costs_the_session_check_nothing(app, client, acme, watched):
    """Pooled connections are pinged only after a second idle: one cut within that second fails
    the lookup's first read, which then reads again on a fresh connection (on both of its paths)."""
    token = app_session(acme["agent"]).token
    log_in(client, acme["admin"])
    if watched:
        event.listen(db.engine, "before_cursor_execute", _watch)
    try:
        for _ in range(3):
            assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
            db.session.remove()
            assert _cut_every_connection() > 0
            assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
            db.session.remove()
            assert _cut_every_connection() > 0
            assert client.get("/api/v1/me").status_code == 200  # the portal cookie
            db.session.remove()
    finally:
        if watched:
            event.remove(db.engine, "before_cursor_execute", _watch)
        db.engine.dispose()


@pytest.mark.postgres
def test_a_connection_idle_through_a_cut_is_replaced_on_checkout(app, client, acme):
    """After a second idle the pool pings: a route whose first statement is not the session
    lookup (readiness reads the migrations) succeeds after the database dropped every connection."""
    assert app.config["DATABASE_PING_IDLE_SECONDS"] == 1
    try:
        assert client.get("/readyz").status_code == 200
        db.session.remove()
        assert _cut_every_connection() > 0
        time.sleep(1.2)
        assert client.get("/readyz").status_code == 200
    finally:
        db.engine.dispose()
