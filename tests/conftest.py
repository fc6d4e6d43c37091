"""Fixtures: the app on a real database (SQLite, or PostgreSQL with TEST_DATABASE_URL), factories,
and a signing test IdP."""

from __future__ import annotations

import os
import tempfile

# Before config is imported: keys and files the app writes (the demo IdP's) go to a scratch folder.
os.environ.setdefault("INSTANCE_DIR", tempfile.mkdtemp(prefix="sso-portal-tests-"))

import functools
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import flask_migrate
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.serving import make_server

from app import create_app
from app.extensions import db
from app.models import Account, IdpConnection, User
from app.models.idp_connection import ENABLED
from app.roles import parse_roles
from app.saml.certs import certificate_info, generate_key_pair
from app.saml.urls import sp_values
from app.services import connections as connections_service
from app.services.connections import add_certificates, create_connection
from app.services.users import create_user
from config import TestingConfig, database_url
from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS
from tests.helpers.signin import sso_response
from tests.helpers.web import FreshRequestClient, another_browser, csrf_from
from tests.saml_idp import IDP_SSO_URL, TestIdP

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
IS_POSTGRES = TEST_DATABASE_URL.startswith(("postgres://", "postgresql"))
BASE_URL = "https://sso.test"


def pytest_report_header() -> str:
    return f"database: {'PostgreSQL ' + TEST_DATABASE_URL if IS_POSTGRES else 'SQLite (set TEST_DATABASE_URL=postgresql://... for PostgreSQL)'}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="PostgreSQL only: run with TEST_DATABASE_URL=postgresql://127.0.0.1/test (CI does)")
    for item in items:
        if "postgres" in item.keywords and not IS_POSTGRES:
            item.add_marker(skip)


def make_config(tmp_dir: str, **extra: object) -> type[TestingConfig]:
    url = database_url(TEST_DATABASE_URL) if IS_POSTGRES else f"sqlite:///{tmp_dir}/test.db"
    return type("TestConfig", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": url, "BASE_URL": BASE_URL, **extra})


def _reset_schema(app: Flask) -> None:
    """Drop everything, then build the schema with the migrations (which proves they run)."""
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        flask_migrate.upgrade()


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    tmp_dir = tmp_path_factory.mktemp("db")
    application = create_app(make_config(str(tmp_dir)))
    # Every test client, including app.test_client(), starts each request with a fresh ``g``.
    application.test_client_class = FreshRequestClient
    _reset_schema(application)
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_tables(app: Flask) -> Iterator[None]:
    """Each test starts with empty tables (faster than rebuilding the schema)."""
    with app.app_context():
        yield
        db.session.rollback()
        db.session.remove()
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return another_browser(app)


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture(scope="session")
def sp_key_pairs() -> Callable[..., tuple[str, str]]:
    """``generate_key_pair`` made to answer each common name with one key pair per test session.

    An RSA-2048 key takes tens of milliseconds and every new connection makes one: sharing it
    roughly halves the suite's fixture time. Every SP certificate is still real and self-signed."""
    return functools.cache(generate_key_pair)


@pytest.fixture(autouse=True)
def _shared_sp_key_pair(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, sp_key_pairs: Callable[..., tuple[str, str]]
) -> None:
    """New connections get the session's SP key pair, unless a test is marked ``own_keys`` (it
    compares the keys or certificates of two connections, or rotates them)."""
    if request.node.get_closest_marker("own_keys") is None:
        monkeypatch.setattr(connections_service, "generate_key_pair", sp_key_pairs)


@pytest.fixture(scope="session")
def idp() -> TestIdP:
    return TestIdP.create()


@pytest.fixture
def make_account() -> Callable[..., Account]:
    def factory(slug: str = "acme", name: str = "Acme Inc", sso_required: bool = False) -> Account:
        account = Account(slug=slug, name=name, sso_required=sso_required)
        db.session.add(account)
        db.session.commit()
        return account

    return factory


@pytest.fixture
def make_user() -> Callable[..., User]:
    def factory(
        account: Account, email: str, roles: str = "admin", password: str | None = None, name: str = ""
    ) -> User:
        user = create_user(account, email, roles=parse_roles(roles, allow_staff=True), name=name, password=password)
        db.session.commit()
        return user

    return factory


@pytest.fixture
def make_connection(idp: TestIdP) -> Callable[..., IdpConnection]:
    def factory(
        account: Account,
        plugin_key: str = "generic",
        *,
        status: str = ENABLED,
        test_idp: TestIdP | None = None,
        **settings: object,
    ) -> IdpConnection:
        signer = test_idp or idp
        connection = create_connection(account, plugin_key)
        connection.idp_entity_id = signer.entity_id
        connection.idp_sso_url = IDP_SSO_URL
        add_certificates(connection, [certificate_info(signer.cert_pem)])
        connection.status = status
        allow = settings.pop("allow_idp_initiated", False)
        connection.allow_idp_initiated = bool(allow)
        connection.settings = dict(settings)
        db.session.commit()
        return connection

    return factory


@pytest.fixture
def acme(make_account, make_user, make_connection) -> dict:
    """An account with an enabled connection, an admin and an agent."""
    account = make_account()
    connection = make_connection(account)
    admin = make_user(account, "admin@acme.example", "admin")
    agent = make_user(account, "agent@acme.example", "agent")
    return {
        "account": account,
        "connection": connection,
        "admin": admin,
        "agent": agent,
        "sp": sp_values(connection).as_dict(),
    }


@pytest.fixture
def csrf_token(client: FlaskClient) -> Callable[[], str]:
    """Read a CSRF token the way a browser gets one: from a rendered form (the sign-in page)."""

    return lambda: csrf_from(client, "/login")


@pytest.fixture
def sign_in(client: FlaskClient, idp: TestIdP) -> Callable[..., object]:
    """Run the whole SP-initiated flow for ``email`` through the test IdP; return the ACS response."""

    def flow(connection: IdpConnection, email: str, **response_kwargs: object):
        return sso_response(client, idp, connection, email, **response_kwargs)

    return flow


# --- browser tests: a real server in a thread, Debian's chromium driven by Playwright --------


@dataclass
class LiveServer:
    """The portal served over real HTTP on 127.0.0.1, sharing the tests' database."""

    url: str
    app: Flask


@pytest.fixture(scope="session")
def live_server(app: Flask) -> Iterator[LiveServer]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    url = f"http://127.0.0.1:{port}"
    live_config = type(
        "LiveConfig",
        (TestingConfig,),
        {
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "BASE_URL": url,
            "DEMO_IDP": True,
            # As in development: the demo IdP's endpoints are http on this machine.
            "METADATA_FETCH_ALLOW_INSECURE": True,
            "TESTING": False,
        },
    )
    live_app = create_app(live_config)
    server = make_server("127.0.0.1", port, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveServer(url=url, app=live_app)
    server.shutdown()
    with live_app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: `make browser` (apt-get install chromium) installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def new_page(browser) -> Iterator[Callable[[], object]]:
    """Open a tab in a browser context of its own (own cookies: another person's browser)."""
    contexts = []

    def open_tab() -> object:
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        contexts.append(context)
        tab = context.new_page()
        tab.set_default_timeout(10_000)
        return tab

    yield open_tab
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page) -> object:
    return new_page()
