"""What the users, import, support and revoke benchmarks share: the real app on a scratch database,
fast bulk loading, and medians.

The database is SQLite in a temporary folder, or ``BENCH_DATABASE_URL`` (PostgreSQL). Every table
in that database is dropped and rebuilt with the migrations: point it at a scratch database.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flask_migrate
from flask import Flask, g, has_app_context
from flask.testing import FlaskClient
from sqlalchemy import Table

from app import create_app
from app.extensions import db
from config import TestingConfig, database_url

BASE_URL = "https://sso.bench"


class FreshClient(FlaskClient):
    """A test client whose every request authenticates from scratch, as in production.

    The benchmarks keep one app context open (for database access); Flask reuses it for each
    request, and its ``g`` would keep the user flask-login found for the previous request.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            for name in ("_login_user", "user_session", "app_session", "csrf_token"):
                g.pop(name, None)
        return super().open(*args, **kwargs)


def build_app(tmp: str) -> Flask:
    """The app on an empty schema built by the migrations (as production gets it)."""
    url = os.environ.get("BENCH_DATABASE_URL")
    settings = type(
        "BenchConfig",
        (TestingConfig,),
        {
            "SQLALCHEMY_DATABASE_URI": database_url(url) if url else f"sqlite:///{tmp}/bench.db",
            "BASE_URL": BASE_URL,
            # One client plays thousands of sign-ins from one address: the per-address limits are
            # kept (their cost is measured) but set out of reach.
            "ANONYMOUS_REQUESTS_PER_MINUTE": 10**9,
            "MAX_PENDING_REQUESTS_PER_BROWSER": 10**9,
        },
    )
    os.environ.setdefault("INSTANCE_DIR", tmp)
    app = create_app(settings)
    app.test_client_class = FreshClient
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        flask_migrate.upgrade()
    return app


def database_label(app: Flask) -> str:
    """Which database the figures are for (without a password)."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    return "SQLite (temporary file)" if url.startswith("sqlite") else "PostgreSQL " + url.split("@")[-1]


def is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def bulk_load(table: Table, columns: Sequence[str], rows: Iterable[tuple[Any, ...]], batch: int = 20_000) -> int:
    """Load rows as fast as the database allows: COPY on PostgreSQL, executemany on SQLite.

    Rows that bring their own ids leave a PostgreSQL sequence behind them (COPY does not move it),
    so it is moved past them here: the app's own inserts that follow must not collide."""
    count = 0
    if is_postgres():
        from psycopg.types.json import Json

        raw = db.engine.raw_connection()
        try:
            with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(tuple(Json(value) if isinstance(value, dict) else value for value in row))
                    count += 1
            raw.commit()
        finally:
            raw.close()
        if "id" in columns:
            with db.engine.begin() as connection:
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), (SELECT max(id) FROM {table.name}))"
                )
        return count
    statement = table.insert()
    chunk: list[dict[str, Any]] = []
    with db.engine.begin() as connection:
        for row in rows:
            chunk.append(dict(zip(columns, row, strict=True)))
            if len(chunk) >= batch:
                connection.execute(statement, chunk)
                count += len(chunk)
                chunk = []
        if chunk:
            connection.execute(statement, chunk)
            count += len(chunk)
    return count


def analyze() -> None:
    """Fresh planner statistics after a bulk load (as autovacuum / a DBA would have)."""
    with db.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")


def settle() -> None:
    """On PostgreSQL, after a bulk load: VACUUM ANALYZE and a CHECKPOINT, so that what is timed next
    meets old rows as old rows are (visible to all, written out), not the load's own background
    writes, which slow every COMMIT for a while after millions of rows. A no-op on SQLite."""
    if db.engine.dialect.name != "postgresql":
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
        connection.exec_driver_sql("CHECKPOINT")


def timed(func: Callable[[], Any], repeat: int) -> list[float]:
    """Run ``func`` ``repeat`` times (after one warm-up run); return the durations in seconds."""
    func()
    samples = []
    for _ in range(repeat):
        begin = time.perf_counter()
        func()
        samples.append(time.perf_counter() - begin)
    return samples


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def csv_bytes(rows: Iterable[str]) -> io.BytesIO:
    return io.BytesIO("".join(rows).encode())


def load_accounts_and_users(accounts: int, users: int) -> None:
    """``accounts`` accounts and ``users`` active users spread over them (user n in account
    n % accounts + 1, email ``user{n}@acct{account}.example``), loaded in bulk."""
    from app.models import Account, User
    from app.models.user import ACTIVE
    from app.timeutil import utcnow

    now = utcnow()
    bulk_load(
        Account.__table__,
        ("id", "slug", "name", "sso_required", "created_at"),
        ((n, f"acct{n}", f"Account {n}", False, now) for n in range(1, accounts + 1)),
    )
    bulk_load(
        User.__table__,
        ("id", "account_id", "email", "name", "roles", "status", "created_at", "updated_at"),
        (
            (
                n,
                n % accounts + 1,
                f"user{n}@acct{n % accounts + 1}.example",
                f"User {n}",
                "admin,agent",
                ACTIVE,
                now,
                now,
            )
            for n in range(1, users + 1)
        ),
    )


def enabled_okta_connection(idp: Any, email: str) -> tuple[Any, Any]:
    """An account "acme" with an admin ``email`` and an enabled Okta connection trusting ``idp``
    (a ``tests.saml_idp.TestIdP``); return (user, connection). The caller commits."""
    from app.models import Account
    from app.models.idp_connection import ENABLED
    from app.saml import certificate_info
    from app.services.connections import add_certificates, create_connection
    from app.services.users import create_user

    account = Account(slug="acme", name="Acme")
    db.session.add(account)
    db.session.flush()
    user = create_user(account, email, roles=["admin"])
    connection = create_connection(account, "okta")
    connection.idp_entity_id = idp.entity_id
    connection.idp_sso_url = "https://idp.example.test/sso"
    add_certificates(connection, [certificate_info(idp.cert_pem)])
    connection.status = ENABLED
    db.session.flush()
    return user, connection
