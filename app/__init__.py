"""The application factory. It only wires: settings, extensions, plugins, blueprints, commands."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import Any, TextIO, cast

from flask import Flask, Response, request
from flask.logging import wsgi_errors_stream
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from config import BASE_DIR, INSTANCE_DIR, Config, config_for_env


def create_app(config: type[Config] | None = None) -> Flask:
    """Build the app from a settings class (default: the one ``APP_ENV`` names)."""
    app = Flask(__name__, instance_path=str(INSTANCE_DIR))
    settings = config or config_for_env()
    app.config.from_object(settings)
    settings.validate(app.config)

    configure_logging(app)
    configure_files(app)
    configure_proxy(app)
    configure_saml()
    configure_canonical_host(app)
    configure_extensions(app)
    configure_blueprints(app)
    configure_security_headers(app)

    from app import cli

    cli.init_app(app)
    return app


#: One handler for the ``app`` logger, shared by every app built in this process (tests build many).
#: ``wsgi_errors_stream`` is the request's ``wsgi.errors`` (gunicorn's error log) or the current
#: ``sys.stderr``, looked up on each write.
LOG_HANDLER = logging.StreamHandler(cast(TextIO, wsgi_errors_stream))
LOG_HANDLER.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))


def configure_logging(app: Flask) -> None:
    """Give the ``app`` logger (ours: Flask names it after the package) a handler and a level.

    The root logger is left alone: libraries (alembic, SQLAlchemy) stay at Python's default of
    warnings only, and whatever embeds the app keeps its own logging setup. ``flask`` commands
    lower the level to WARNING while they run (``app/cli/_common.py``) unless LOG_LEVEL is set.
    """
    attach_log_handler(app.import_name, app.config["LOG_LEVEL"] or logging.INFO)


def attach_log_handler(name: str, level: str | int) -> None:
    """Send the ``name`` logger's records at ``level`` and above to ``LOG_HANDLER`` (once)."""
    logger = logging.getLogger(name)
    logger.setLevel(level)
    # Under a server that configured logging (gunicorn.conf.py gives the root logger a handler
    # with the worker's pid and the request id), our records go there, once; ours is for the rest.
    if LOG_HANDLER not in logger.handlers and not logging.getLogger().handlers:
        logger.addHandler(LOG_HANDLER)


def configure_files(app: Flask) -> None:
    """The instance folder (the default SQLite database, the demo IdP's key) and a SQLite database
    file are readable by the app's user only: 0700 and 0600, tightened if they exist already.
    SQLite gives its -wal and -shm files the database file's mode."""
    restrict_mode(INSTANCE_DIR, 0o700, directory=True)
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    path = url.database
    if url.get_backend_name() == "sqlite" and path and path != ":memory:" and not path.startswith("file:"):
        database = Path(path)
        if not database.parent.exists():
            database.parent.mkdir(mode=0o700, parents=True)
        if not database.exists():  # created empty (SQLite takes that as a new database) with mode 0600
            with contextlib.suppress(FileExistsError):
                os.close(os.open(database, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        restrict_mode(database, 0o600)


def restrict_mode(path: Path, mode: int, *, directory: bool = False) -> None:
    """Create ``path`` (a folder) with ``mode``, or take group and other permissions off it."""
    if directory:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        try:
            path.chmod(mode)
        except OSError as exc:
            logging.getLogger(__name__).warning("Could not make %s private (%s): chmod %o it.", path, exc, mode)


def configure_proxy(app: Flask) -> None:
    """Behind a TLS proxy, take the client address from X-Forwarded-For (audit events, rate
    limits). SAML URLs never depend on these headers: they come from BASE_URL.

    A proxy set-up that needs TRUSTED_PROXY_COUNT is detected and logged once per app (process):
    forwarded headers arriving while no proxy is trusted, or plain-http requests while BASE_URL is
    https (a TLS proxy whose X-Forwarded-Proto is not trusted or not sent).
    """
    hops = app.config["TRUSTED_PROXY_COUNT"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    https_base = app.config["BASE_URL"].startswith("https://")
    warned: set[str] = set()
    log = logging.getLogger(__name__)

    @app.before_request
    def detect_proxy_set_up() -> None:
        if len(warned) == 2:
            return
        forwarded = [name for name in ("X-Forwarded-For", "X-Forwarded-Proto") if name in request.headers]
        if forwarded and not hops and "headers" not in warned:
            warned.add("headers")
            log.warning(
                "Requests carry %s but TRUSTED_PROXY_COUNT=0, so they are ignored: audit events and rate limits "
                "see the proxy's address. If this app runs behind proxies you control, set TRUSTED_PROXY_COUNT "
                "to their number (1 for one nginx or load balancer). Logged once.",
                " and ".join(forwarded),
            )
        if https_base and request.scheme == "http" and "scheme" not in warned:
            warned.add("scheme")
            log.warning(
                "BASE_URL is https but this request arrived over http%s. Behind a TLS proxy, set "
                "TRUSTED_PROXY_COUNT and have the proxy send X-Forwarded-Proto: https. Logged once.",
                " with no trusted proxy (TRUSTED_PROXY_COUNT=0)" if not hops else " (no X-Forwarded-Proto: https)",
            )


def configure_canonical_host(app: Flask) -> None:
    """Development: other host names go to BASE_URL's, before anything else (CSRF included) runs."""
    from app.views import hosts

    hosts.init_app(app)


def configure_saml() -> None:
    """Fail early on a broken XML stack, a malformed plugin; cache the SAML schemas."""
    from app.idp_plugins import check_registry
    from app.saml import schema_cache
    from app.saml.compat import check_libxml2

    check_libxml2()
    check_registry()
    schema_cache.install()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """SQLite: enforce foreign keys, wait for a lock instead of failing at once, and use the
    write-ahead log (readers never block the writer; a commit costs no full fsync)."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def configure_extensions(app: Flask) -> None:
    from app.extensions import check_connections_after_idle, csrf, db, migrate
    from app.sessions import web

    if not event.contains(Engine, "connect", _sqlite_pragmas):
        event.listen(Engine, "connect", _sqlite_pragmas)
    db.init_app(app)
    with app.app_context():
        check_connections_after_idle(db.engine, app.config["DATABASE_PING_IDLE_SECONDS"])
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    web.init_app(app)


def configure_blueprints(app: Flask) -> None:
    from app import observability
    from app.views import (
        admin,
        api,
        app_auth,
        auth,
        errors,
        formatting,
        health,
        limits,
        me,
        portal,
        saml,
        scim,
        scim_setup,
        setup,
        slo,
        support,
    )
    from app.views.converters import IdConverter

    app.url_map.converters["id"] = IdConverter

    observability.init_app(app)
    for blueprint in (auth.bp, saml.bp, slo.bp, portal.bp, api.bp, app_auth.bp, setup.bp, admin.bp, support.bp, me.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(health.bp)
    app.register_blueprint(scim.bp)
    app.register_blueprint(scim_setup.bp)
    if app.config["DEMO_IDP"]:
        from app.demo_idp import views as demo_views

        app.register_blueprint(demo_views.bp)
    errors.init_app(app)
    limits.init_app(app)
    formatting.init_app(app)


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def configure_security_headers(app: Flask) -> None:
    secure = app.config["BASE_URL"].startswith("https://")
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_NAME="__Host-csrf" if secure else "csrf_session",
    )

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        # The AuthnRequest travels in the IdP URL's query string; never leak it as a Referer.
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if not request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
