"""The sign-in's statements straight on the request transaction's psycopg connection.

On PostgreSQL, SQLAlchemy's execution context and result object around each statement cost more
CPU than psycopg's own round trip (about 80 us of some 120 us per statement here), and the ACS
runs five of them. ``execute`` runs a Core statement, compiled once per dialect, on the driver
connection under the request's database session: same transaction, same SQL, same parameters,
the same column types back (psycopg adapts text, integers, naive timestamps and JSON as the
Core path does), and driver errors re-raised as SQLAlchemy's (an ``IntegrityError`` is still one;
a lost connection is invalidated and becomes the 503 every other statement's loss becomes).

Taken only on psycopg and while nothing listens to the engine's statements (a tracer, a test
counting statements), so that whatever watches them sees these too; SQLite and everything else
goes through ``Session.execute``.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

from app.extensions import db, pooled_driver_connection


@functools.lru_cache(maxsize=64)
def _compiled(statement: Executable, dialect: Dialect) -> tuple[str, dict[str, Any]]:
    """The statement's SQL for ``dialect`` and the constant parameters it binds (built once)."""
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    return compiled.string, {key: value for key, value in compiled.params.items() if value is not None}


def _direct() -> bool:
    engine = db.engine
    dispatch = engine.dispatch
    return engine.dialect.driver == "psycopg" and not (dispatch.before_cursor_execute or dispatch.after_cursor_execute)


def execute(statement: Executable, params: dict[str, Any]) -> tuple[list[tuple[Any, ...]], int]:
    """Run ``statement`` in the request's transaction; its rows (if it returns any) and rowcount."""
    if not _direct():
        result: Any = db.session.execute(statement, params)
        if getattr(result, "returns_rows", True):  # a select's ORM result has no such flag
            rows = [tuple(row) for row in result]
            return rows, len(rows)
        return [], result.rowcount
    session = db.session()
    if session.autoflush:
        session.flush()  # as Session.execute would: the statement sees the session's pending changes
    connection = session.connection()
    dialect = connection.dialect
    sql, constants = _compiled(statement, dialect)
    values = {**constants, **params}
    try:
        cursor = connection.connection.driver_connection.execute(sql, values)  # type: ignore[union-attr]
        rows = cursor.fetchall() if cursor.description is not None else []
        return rows, cursor.rowcount
    except dialect.loaded_dbapi.Error as err:
        invalidated = dialect.is_disconnect(err, None, None)
        if invalidated:
            connection.invalidate(err)
        raise DBAPIError.instance(
            sql, values, err, dialect.loaded_dbapi.Error, connection_invalidated=invalidated, dialect=dialect
        ) from err


def execute_alone(statement: Executable, params: dict[str, Any]) -> list[tuple[Any, ...]] | None:
    """Run one atomic statement outside the request's transaction, committed by itself (a pooled
    connection in autocommit); its rows. None when the direct path does not apply: the caller
    runs it its own way. When no connection can be had, raises what ``Engine.connect`` would."""
    if not _direct():
        return None
    engine = db.engine
    dialect = engine.dialect
    sql, constants = _compiled(statement, dialect)
    values = {**constants, **params}
    pooled = pooled_driver_connection(engine)
    try:
        connection: Any = pooled.driver_connection
        connection.autocommit = True
        cursor = connection.execute(sql, values)
        rows = cursor.fetchall() if cursor.description is not None else []
        connection.autocommit = False
        return rows
    except dialect.loaded_dbapi.Error as err:
        # Whatever failed, this connection goes no further (nor back to the pool in autocommit).
        pooled.invalidate(err)
        raise DBAPIError.instance(
            sql,
            values,
            err,
            dialect.loaded_dbapi.Error,
            connection_invalidated=dialect.is_disconnect(err, None, None),
            dialect=dialect,
        ) from err
    finally:
        pooled.close()
