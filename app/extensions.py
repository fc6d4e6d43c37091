"""Flask extensions, created unbound here and bound to the app in ``create_app``."""

import time
from typing import TYPE_CHECKING, Any

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import Engine, MetaData, event, exc
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import PoolProxiedConnection

#: Stable constraint names, so that migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


#: Objects stay readable after commit: views commit, then render what they just wrote.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})

if TYPE_CHECKING:
    #: What models subclass. For the type checker it is the declarative base (which it
    #: understands); at run time Flask-SQLAlchemy's ``db.Model`` built on that base.
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


#: Where a pooled connection's record keeps when it was last in use (``time.monotonic()``).
_LAST_USED = "portal_last_used"


def check_connections_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping a pooled connection on checkout only when it has been idle over ``idle_seconds``.

    ``pool_pre_ping`` pings on every checkout: one round trip more on every request, which is
    most of what a session check costs. A connection that was in use a moment ago is almost
    surely alive; one that sat idle (say, through a database restart) is the one to check, so that
    the first request after the restart gets a fresh connection instead of an error. A connection
    that dies within the window is caught by the statement itself: the driver's disconnect error
    invalidates the whole pool, the session lookups read once more (``app.sessions``), and any
    other request answers 503 (``app.views.errors``). A failed ping invalidates the whole pool,
    as ``pool_pre_ping`` does. 0 pings on every checkout. SQLite (a file in the process) is
    never pinged.
    """
    if engine.dialect.name == "sqlite":
        return
    dialect = engine.dialect

    def stamp(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_LAST_USED] = time.monotonic()

    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last_used = record.info.get(_LAST_USED)
        if last_used is not None and time.monotonic() - last_used <= idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as err:
            raise exc.InvalidatePoolError(f"ping after idle failed: {type(err).__name__}") from err

    event.listen(engine.pool, "connect", stamp)
    event.listen(engine.pool, "checkin", stamp)
    event.listen(engine.pool, "checkout", ping_if_idle)


def pooled_driver_connection(engine: Engine) -> PoolProxiedConnection:
    """A pooled DBAPI connection, for the few hot statements that run on the driver directly.

    A failure to connect raises what ``Engine.connect`` would (a ``DBAPIError`` marked as a
    disconnect when it is one), so the outage handling that answers 503 sees the same error
    whichever way a statement went.
    """
    dialect = engine.dialect
    try:
        return engine.raw_connection()
    except dialect.loaded_dbapi.Error as err:
        raise exc.DBAPIError.instance(
            None,
            None,
            err,
            dialect.loaded_dbapi.Error,
            connection_invalidated=dialect.is_disconnect(err, None, None),
            dialect=dialect,
        ) from err
