"""Every server-rendered page and state of the portal, reached in a real browser: the one list that
the accessibility and phone-layout tests walk (tests/browser/test_accessibility.py,
test_phone_layout.py). Adding a page = adding one ``PortalPage`` to ``PAGES``.

The world behind the pages (the demo account, one connection per IdP plugin, signed-in browsers,
test sign-in results) is built once per test module through the live server and the demo IdP's
real signed SAML, so that each page check is only a page load and a measurement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import pytest
from flask import Flask
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from app.demo_idp.setup import demo_idp_entity_id, demo_idp_key_pair, ensure_demo
from app.extensions import db
from app.idp_plugins import PLUGINS
from app.idp_plugins.salesforce import CONNECTED_APP, EXTERNAL_CLIENT_APP
from app.models import Account, IdpConnection, ImportJob, User, UserSession
from app.models.idp_connection import TESTED
from app.models.import_job import CHECKING, FAILED, WRITING
from app.saml.certs import certificate_info, generate_key_pair
from app.services.connections import add_certificates, create_connection
from app.services.import_jobs import WORKER_LOST
from app.services.scim_tokens import create_token
from app.services.users import create_user
from app.timeutil import utcnow
from tests.helpers.browser import demo_sign_in

ADMIN = "alice@demo.example"
SUPPORT = "sam@demo.example"
PLUGIN_KEYS = tuple(plugin.key for plugin in PLUGINS)
CSV_PREVIEW = "email,name,roles\nnew.person@demo.example,New Person,agent\nalice@demo.example,Alice Renamed,admin\n"
CSV_REFUSED = "email,name,roles\nnot-an-address,Nobody,agent\n"
#: Admins of accounts at each step of the home page's checklist (they sign in with a password).
PASSWORD = "correct horse battery staple"
NO_CONNECTION_ADMIN = "nina@northwind.example"
DRAFT_ADMIN = "dan@globex.example"
TESTED_ADMIN = "tara@initech.example"
CHECKLIST_ADMINS = {
    NO_CONNECTION_ADMIN: ("northwind", "Northwind", None),
    DRAFT_ADMIN: ("globex", "Globex", "draft"),
    TESTED_ADMIN: ("initech", "Initech", TESTED),
}
#: A desktop app's authorize request (RFC 8252: loopback redirect, PKCE S256).
APP_AUTHORIZE = (
    "/sso/app/authorize?app=desktop&redirect_uri=http%3A%2F%2F127.0.0.1%3A53682%2Fcallback&response_type=code"
    "&code_challenge_method=S256&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&state=a11y"
)


class Server(Protocol):
    """The portal served over HTTP (the tests' ``live_server``, or scripts/screenshots.py's)."""

    url: str
    app: Flask


@dataclass
class World:
    """What the pages need: the server, one signed-in tab per person, and the ids in URLs."""

    url: str
    tabs: dict[str | None, object]
    #: The served app (for the states only the server side can set up: a running job, an outage).
    app: Flask | None = None
    draft: dict[str, int] = field(default_factory=dict)  # plugin key -> connection without IdP details
    imported: dict[str, int] = field(default_factory=dict)  # plugin key -> connection with them
    alice_id: int = 0
    alice_session_id: int = 0
    #: Alice's session on her other device (not the one the admin tab uses).
    alice_other_session_id: int = 0
    sam_id: int = 0
    #: The demo account's enabled connection, and a connection with two signing certificates.
    enabled_id: int = 0
    two_certs_id: int = 0
    old_cert_id: int = 0
    scim_token_id: int = 0
    test_success_url: str = ""
    test_refusal_url: str = ""
    test_signature_url: str = ""
    imports: int = 0

    def tab(self, who: str | None) -> object:
        return self.tabs[who]


@dataclass(frozen=True)
class PortalPage:
    """One page in one state: who looks at it, and how the browser gets there from anywhere."""

    name: str
    who: str | None
    reach: Callable[[object, World], None]
    #: The phone-layout test takes the main pages (the ones the README shows and people use most).
    main: bool = False

    def open(self, world: World) -> object:
        tab = world.tab(self.who)
        self.reach(tab, world)
        tab.wait_for_load_state("load")
        return tab


def goto(path: str | Callable[[World], str]) -> Callable[[object, World], None]:
    """A page reached by a plain GET (``path`` may depend on the world's ids)."""

    def reach(tab, world: World) -> None:
        tab.goto(world.url + (path(world) if callable(path) else path))

    return reach


def _sign_in_refused(tab, world: World) -> None:
    """Dave is not a user: the demo IdP signs him in, the portal refuses him (USER_NOT_FOUND)."""
    tab.context.clear_cookies()
    tab.goto(f"{world.url}/login")
    tab.fill("#sso-email", ADMIN)  # finds the demo account's IdP; there, Dave signs in
    tab.click("[data-testid=sso-submit]")
    tab.wait_for_url("**/demo-idp/sso?*")
    tab.fill("#other_email", "dave@demo.example")
    tab.click("[data-testid=demo-signin-other]")
    tab.wait_for_selector("[data-testid=error-code]")


def _review(plugin_key: str) -> Callable[[object, World], None]:
    """The review step: the demo IdP's metadata pasted on the import page, read, not yet saved."""

    def reach(tab, world: World) -> None:
        tab.goto(f"{world.url}/setup/connections/{world.draft[plugin_key]}/import")
        metadata = tab.request.get(f"{world.url}/demo-idp/metadata").text()
        tab.click("[data-testid=method-paste] summary")
        tab.fill("[data-testid=metadata-xml]", metadata)
        tab.click("[data-testid=import-paste]")
        tab.wait_for_selector("[data-testid=review]")

    return reach


def _csv(content: str) -> Callable[[object, World], None]:
    """The CSV import's preview of ``content`` (a file chosen on the page, nothing applied)."""

    def reach(tab, world: World) -> None:
        tab.goto(f"{world.url}/admin/import")
        tab.set_input_files(
            "[data-testid=import-file]",
            files=[{"name": "users.csv", "mimeType": "text/csv", "buffer": content.encode()}],
        )
        tab.click("[data-testid=preview]")
        tab.wait_for_selector("[data-testid=import-report]")

    return reach


def _csv_applied(tab, world: World) -> None:
    """The CSV import's result: preview, then apply (the way the page offers it). Each visit
    imports a new person, so that there is always something to apply."""
    world.imports += 1
    content = f"email,name,roles\nimported{world.imports}@demo.example,Imported Person,agent\n"
    _csv(content)(tab, world)
    apply_file = tab.locator("[data-testid=apply-file]")
    if apply_file.count():  # the page may ask for the same file again
        apply_file.set_input_files(files=[{"name": "users.csv", "mimeType": "text/csv", "buffer": content.encode()}])
    tab.click("[data-testid=apply]")
    tab.wait_for_selector("[data-testid=import-report][data-applied=yes]")


def _import_job(state: str, **values: object) -> Callable[[object, World], None]:
    """A large file's job page in ``state``: the row is stored as a worker thread leaves it at that
    moment (a fresh heartbeat, so that the page polls and shows the bar), then the page is opened."""

    def reach(tab, world: World) -> None:
        assert world.app is not None
        with world.app.app_context():
            admin = db.session.scalar(select(User).where(User.email == ADMIN))
            assert admin is not None
            now = utcnow()
            job = ImportJob(
                account_id=admin.account_id,
                user_id=admin.id,
                sha256=f"{state:0<64}"[:64],
                filename="people.csv",
                size_bytes=1_200_000,
                state=state,
                rows_total=20_000,
                created_at=now,
                updated_at=now,
                heartbeat_at=now,
                expires_at=now + timedelta(hours=1),
                **values,
            )
            db.session.add(job)
            db.session.commit()
            job_id = job.id
        tab.goto(f"{world.url}/admin/import/{job_id}")

    return reach


def _csv_cancelled(tab, world: World) -> None:
    """A previewed import that the admin cancels (the page's own button)."""
    world.imports += 1
    _csv(f"email,name,roles\ncancelled{world.imports}@demo.example,Cancelled Person,agent\n")(tab, world)
    tab.click("[data-testid=cancel]")
    tab.wait_for_selector("[data-testid=job-cancelled]")


def _confirm_unticked(path: Callable[[World], str]) -> Callable[[object, World], None]:
    """A confirmation whose box to tick was left empty: the page again, with the error."""

    def reach(tab, world: World) -> None:
        tab.goto(world.url + path(world))
        tab.click("[data-testid=confirm]")
        tab.wait_for_selector("[data-testid=field-error]")

    return reach


def _other_host_refusal(tab, world: World) -> None:
    """A sign-in started at localhost while the portal's address (BASE_URL) is 127.0.0.1: the IdP
    answers to 127.0.0.1, where this browser's binding cookie is not, and the page says which
    address to use."""
    tab.context.clear_cookies()
    tab.goto(world.url.replace("127.0.0.1", "localhost") + "/login")
    tab.fill("#sso-email", ADMIN)
    tab.click("[data-testid=sso-submit]")
    tab.wait_for_url("**/demo-idp/sso?*")
    tab.fill("#other_email", ADMIN)
    tab.click("[data-testid=demo-signin-other]")
    tab.wait_for_selector("[data-testid=address-hint]")


def _app_email_refused(tab, world: World) -> None:
    """The app's email page after an address that no account knows (corrected on the same page)."""
    tab.goto(world.url + APP_AUTHORIZE)
    tab.fill("input[type=email]", "someone@unknown.example")
    tab.click("main button[type=submit]")
    tab.wait_for_selector("[data-testid=error-code]")


def _database_down(tab, world: World) -> None:
    """The admin's next request finds the database unreachable (every statement fails as a refused
    connection does): the portal answers its "briefly unavailable" page."""
    assert world.app is not None
    with world.app.app_context():
        engine = db.engine

    def refuse(*_args: object) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    event.listen(engine, "before_cursor_execute", refuse)
    try:
        tab.goto(f"{world.url}/portal/")
        tab.wait_for_selector("[data-testid=error-code]")
    finally:
        event.remove(engine, "before_cursor_execute", refuse)


def _wizard_pages(key: str) -> list[PortalPage]:
    main = key == "okta"
    return [
        PortalPage(
            f"wizard-{key}-2-walkthrough", ADMIN, goto(lambda w: f"/setup/connections/{w.draft[key]}/walkthrough"), main
        ),
        PortalPage(f"wizard-{key}-3-import", ADMIN, goto(lambda w: f"/setup/connections/{w.draft[key]}/import")),
        PortalPage(f"wizard-{key}-3-review", ADMIN, _review(key), main),
        PortalPage(f"wizard-{key}-4-test", ADMIN, goto(lambda w: f"/setup/connections/{w.imported[key]}/test")),
        PortalPage(f"wizard-{key}-5-overview", ADMIN, goto(lambda w: f"/setup/connections/{w.imported[key]}/"), main),
    ]


PAGES: tuple[PortalPage, ...] = (
    PortalPage("login", None, goto("/login"), main=True),
    PortalPage("login-signed-out-by-admin", None, goto("/login?ended=administrator")),
    PortalPage("signin-refused", None, _sign_in_refused),
    PortalPage("signin-other-host", None, _other_host_refusal),
    PortalPage("app-signin-email", None, goto(APP_AUTHORIZE)),
    PortalPage("app-signin-email-refused", None, _app_email_refused),
    PortalPage("app-signin-error", None, goto("/sso/app/authorize?app=toaster&redirect_uri=x&state=a11y")),
    PortalPage("not-found", ADMIN, goto("/no-such-page")),
    PortalPage("unavailable", ADMIN, _database_down),
    PortalPage("home-admin", ADMIN, goto("/portal/"), main=True),
    PortalPage("home-admin-no-connection", NO_CONNECTION_ADMIN, goto("/portal/"), main=True),
    PortalPage("home-admin-draft", DRAFT_ADMIN, goto("/portal/")),
    PortalPage("home-admin-tested", TESTED_ADMIN, goto("/portal/")),
    PortalPage("home-support", SUPPORT, goto("/portal/")),
    PortalPage("setup-accounts", SUPPORT, goto("/setup/?q=demo")),
    PortalPage("setup-connections", ADMIN, goto("/setup/accounts/demo/"), main=True),
    PortalPage("wizard-1-choose-provider", ADMIN, goto("/setup/accounts/demo/connections/new"), main=True),
    *[page for key in PLUGIN_KEYS for page in _wizard_pages(key)],
    PortalPage(
        "wizard-salesforce-2-connected-app",
        ADMIN,
        goto(lambda w: f"/setup/connections/{w.draft['salesforce']}/walkthrough?path={CONNECTED_APP}"),
    ),
    PortalPage(
        "wizard-salesforce-2-external-client-app",
        ADMIN,
        goto(lambda w: f"/setup/connections/{w.draft['salesforce']}/walkthrough?path={EXTERNAL_CLIENT_APP}"),
    ),
    PortalPage("wizard-settings", ADMIN, goto(lambda w: f"/setup/connections/{w.imported['generic']}/settings")),
    PortalPage("scim-setup", ADMIN, goto("/setup/accounts/demo/scim/")),
    PortalPage("test-result-success", ADMIN, goto(lambda w: w.test_success_url), main=True),
    PortalPage("test-result-refusal", ADMIN, goto(lambda w: w.test_refusal_url), main=True),
    PortalPage("test-result-signature", ADMIN, goto(lambda w: w.test_signature_url)),
    PortalPage("users", ADMIN, goto("/admin/users"), main=True),
    PortalPage("user", ADMIN, goto(lambda w: f"/admin/users/{w.alice_id}")),
    PortalPage("user-new", ADMIN, goto("/admin/users/new")),
    PortalPage("import", ADMIN, goto("/admin/import")),
    PortalPage("import-preview", ADMIN, _csv(CSV_PREVIEW), main=True),
    PortalPage("import-refused", ADMIN, _csv(CSV_REFUSED)),
    PortalPage("import-result", ADMIN, _csv_applied),
    PortalPage("import-cancelled", ADMIN, _csv_cancelled),
    PortalPage("import-job-checking", ADMIN, _import_job(CHECKING, rows_checked=8_500), main=True),
    PortalPage("import-job-writing", ADMIN, _import_job(WRITING, rows_checked=20_000, rows_written=12_000)),
    PortalPage("import-job-failed", ADMIN, _import_job(FAILED, rows_checked=3_000, error_code=WORKER_LOST)),
    PortalPage("support-sessions", SUPPORT, goto("/support/sessions"), main=True),
    PortalPage("support-sessions-filtered", SUPPORT, goto("/support/sessions?email=alice")),
    PortalPage("support-session", SUPPORT, goto(lambda w: f"/support/sessions/{w.alice_session_id}")),
    PortalPage("support-accounts", SUPPORT, goto("/support/accounts")),
    PortalPage("support-audit", SUPPORT, goto("/support/audit")),
    PortalPage("your-sessions", ADMIN, goto("/me/sessions"), main=True),
    # The one confirmation page, for every destructive action.
    PortalPage("confirm-me-sign-out-session", ADMIN, goto(lambda w: f"/me/sessions/{w.alice_other_session_id}/revoke")),
    PortalPage("confirm-me-sign-out-others", ADMIN, goto("/me/sessions/revoke-others")),
    PortalPage(
        "confirm-support-revoke-session", SUPPORT, goto(lambda w: f"/support/sessions/{w.alice_session_id}/revoke")
    ),
    PortalPage("confirm-support-revoke-all", SUPPORT, goto(lambda w: f"/support/users/{w.alice_id}/revoke-sessions")),
    PortalPage(
        "confirm-admin-revoke-all", ADMIN, goto(lambda w: f"/admin/users/{w.alice_id}/revoke-sessions"), main=True
    ),
    PortalPage("confirm-deactivate-user", ADMIN, goto(lambda w: f"/admin/users/{w.sam_id}/deactivate")),
    PortalPage("confirm-delete-user", ADMIN, goto(lambda w: f"/admin/users/{w.sam_id}/delete")),
    PortalPage("confirm-delete-user-unticked", ADMIN, _confirm_unticked(lambda w: f"/admin/users/{w.sam_id}/delete")),
    PortalPage("confirm-disable-connection", ADMIN, goto(lambda w: f"/setup/connections/{w.enabled_id}/disable")),
    PortalPage(
        "confirm-delete-connection", ADMIN, goto(lambda w: f"/setup/connections/{w.imported['generic']}/delete")
    ),
    PortalPage(
        "confirm-remove-certificate",
        ADMIN,
        goto(lambda w: f"/setup/connections/{w.two_certs_id}/certificates/{w.old_cert_id}/remove"),
    ),
    PortalPage(
        "confirm-revoke-scim-token", ADMIN, goto(lambda w: f"/setup/accounts/demo/scim/tokens/{w.scim_token_id}/revoke")
    ),
)

MAIN_PAGES: tuple[PortalPage, ...] = tuple(page for page in PAGES if page.main)


def _test_sign_in(tab, world: World, connection_id: int, email: str) -> str:
    """Run a test sign-in of ``connection_id`` at the demo IdP as ``email``; return the result's URL."""
    tab.goto(f"{world.url}/setup/connections/{connection_id}/test")
    tab.click("[data-testid=start-test]")
    tab.wait_for_url("**/demo-idp/sso?*")
    tab.fill("#other_email", email)
    tab.click("[data-testid=demo-signin-other]")
    tab.wait_for_url(f"**/setup/connections/{connection_id}/tests/*")
    return tab.url.removeprefix(world.url)


def _checklist_accounts() -> None:
    """One account per state of the home page's checklist, each with an admin who uses a password."""
    for email, (slug, name, status) in CHECKLIST_ADMINS.items():
        account = Account(slug=slug, name=name, sso_required=False)
        db.session.add(account)
        db.session.flush()
        create_user(account, email, roles=["admin"], name=f"{name} Admin", password=PASSWORD, actor="test")
        if status is not None:
            connection = create_connection(account, "okta", name="Okta")
            connection.status = status


def _password_sign_in(tab, base_url: str, email: str) -> None:
    tab.goto(f"{base_url}/login")
    tab.click("text=Sign in with a password")
    tab.fill("#pw-email", email)
    tab.fill("#pw-password", PASSWORD)
    tab.click("[data-testid=password-form] button[type=submit]")
    tab.wait_for_url("**/portal/")


def build_world(live_server: Server, browser, **context_options: object) -> World:
    """Create the data, sign Alice (admin), Sam (support) and the checklist admins in, and run
    three test sign-ins (a success, a refused person, a signature by a certificate not trusted)."""
    with live_server.app.app_context():
        demo = ensure_demo()
        account = demo.account
        sam = create_user(account, SUPPORT, roles=["support"], name="Sam Support", actor="test")
        _key, cert_pem = demo_idp_key_pair()
        _other_key, other_cert_pem = generate_key_pair("Okta old certificate")
        draft: dict[str, int] = {}
        imported: dict[str, int] = {}
        for key in PLUGIN_KEYS:
            draft[key] = create_connection(account, key, name=f"{key.title()} draft").id
            connection = create_connection(account, key, name=f"{key.title()} production")
            connection.idp_entity_id = demo_idp_entity_id()
            connection.idp_sso_url = f"{live_server.url}/demo-idp/sso"
            add_certificates(connection, [certificate_info(cert_pem)])
            imported[key] = connection.id
        # Trusts only a certificate the demo IdP does not sign with: its test fails on the signature.
        wrong_cert = create_connection(account, "okta", name="Okta with an old certificate")
        wrong_cert.idp_entity_id = demo_idp_entity_id()
        wrong_cert.idp_sso_url = f"{live_server.url}/demo-idp/sso"
        add_certificates(wrong_cert, [certificate_info(other_cert_pem)])
        # A rollover in progress: the old certificate may be removed.
        two_certs = db.session.get(IdpConnection, imported["generic"])
        assert two_certs is not None
        add_certificates(two_certs, [certificate_info(other_cert_pem)])
        token = create_token(account, name="Okta provisioning", actor="test")
        _checklist_accounts()
        db.session.commit()
        ids = {
            "sam_id": sam.id,
            "enabled_id": demo.id,
            "two_certs_id": two_certs.id,
            "old_cert_id": max(cert.id for cert in two_certs.certificates),
            "scim_token_id": token.row.id,
            "wrong_cert_id": wrong_cert.id,
        }

    tabs: dict[str | None, object] = {}
    for who in (None, ADMIN, SUPPORT, *CHECKLIST_ADMINS):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        if who in CHECKLIST_ADMINS:
            _password_sign_in(tab, live_server.url, who)
        elif who:
            demo_sign_in(tab, live_server.url, who)
        tabs[who] = tab
    # Alice on a second device, so that "your sessions" has a session to sign out.
    other_device = browser.new_context(**context_options)
    demo_sign_in(other_device.new_page(), live_server.url, ADMIN)
    other_device.close()
    world = World(url=live_server.url, tabs=tabs, app=live_server.app, draft=draft, imported=imported)
    world.sam_id, world.enabled_id = ids["sam_id"], ids["enabled_id"]
    world.two_certs_id, world.old_cert_id = ids["two_certs_id"], ids["old_cert_id"]
    world.scim_token_id = ids["scim_token_id"]
    admin_tab = world.tab(ADMIN)
    world.test_success_url = _test_sign_in(admin_tab, world, imported["okta"], ADMIN)
    world.test_refusal_url = _test_sign_in(admin_tab, world, imported["okta"], "dave@demo.example")
    world.test_signature_url = _test_sign_in(admin_tab, world, ids["wrong_cert_id"], ADMIN)
    with live_server.app.app_context():
        alice = db.session.scalar(select(User).where(User.email == ADMIN))
        assert alice is not None
        world.alice_id = alice.id
        sessions = db.session.scalars(
            select(UserSession.id).where(UserSession.user_id == alice.id).order_by(UserSession.id)
        ).all()
        world.alice_session_id, world.alice_other_session_id = sessions[0], sessions[-1]
    return world


def close_world(world: World, live_server: Server) -> None:
    """Close the browsers and empty the tables the world filled (the suite's usual clean slate)."""
    for tab in world.tabs.values():
        tab.context.close()
    with live_server.app.app_context():
        db.session.remove()
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())


def world_fixture(**context_options: object):
    """A module-scoped ``world`` fixture (one server, one browser, the data built once)."""

    @pytest.fixture(scope="module")
    def world(live_server: Server, browser) -> Iterator[World]:
        built = build_world(live_server, browser, **context_options)
        yield built
        close_world(built, live_server)

    return world


@pytest.fixture(name="_clean_tables", autouse=True)
def keep_tables(app) -> Iterator[None]:
    """Replaces the suite's per-test table wipe in these modules: the world lives for the module
    (``close_world`` empties the tables at its end)."""
    with app.app_context():
        yield


__all__ = ["MAIN_PAGES", "PAGES", "PortalPage", "World", "keep_tables", "world_fixture"]
