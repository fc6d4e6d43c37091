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
from typing import Protocol

import pytest
from flask import Flask
from sqlalchemy import select

from app.demo_idp.setup import demo_idp_entity_id, demo_idp_key_pair, ensure_demo
from app.extensions import db
from app.idp_plugins import PLUGINS
from app.models import User, UserSession
from app.saml.certs import certificate_info
from app.services.connections import add_certificates, create_connection
from app.services.users import create_user
from tests.helpers.browser import demo_sign_in

ADMIN = "alice@demo.example"
SUPPORT = "sam@demo.example"
PLUGIN_KEYS = tuple(plugin.key for plugin in PLUGINS)
CSV_PREVIEW = "email,name,roles\nnew.person@demo.example,New Person,agent\nalice@demo.example,Alice Renamed,admin\n"
CSV_REFUSED = "email,name,roles\nnot-an-address,Nobody,agent\n"


class Server(Protocol):
    """The portal served over HTTP (the tests' ``live_server``, or scripts/screenshots.py's)."""

    url: str
    app: Flask


@dataclass
class World:
    """What the pages need: the server, one signed-in tab per person, and the ids in URLs."""

    url: str
    tabs: dict[str | None, object]
    draft: dict[str, int] = field(default_factory=dict)  # plugin key -> connection without IdP details
    imported: dict[str, int] = field(default_factory=dict)  # plugin key -> connection with them
    alice_id: int = 0
    alice_session_id: int = 0
    test_success_url: str = ""
    test_refusal_url: str = ""
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
    PortalPage("signin-refused", None, _sign_in_refused),
    PortalPage("not-found", ADMIN, goto("/no-such-page")),
    PortalPage("home-admin", ADMIN, goto("/portal/"), main=True),
    PortalPage("home-support", SUPPORT, goto("/portal/")),
    PortalPage("setup-accounts", SUPPORT, goto("/setup/?q=demo")),
    PortalPage("setup-connections", ADMIN, goto("/setup/accounts/demo/"), main=True),
    PortalPage("wizard-1-choose-provider", ADMIN, goto("/setup/accounts/demo/connections/new"), main=True),
    *[page for key in PLUGIN_KEYS for page in _wizard_pages(key)],
    PortalPage("wizard-settings", ADMIN, goto(lambda w: f"/setup/connections/{w.imported['generic']}/settings")),
    PortalPage("wizard-delete", ADMIN, goto(lambda w: f"/setup/connections/{w.imported['generic']}/delete")),
    PortalPage("scim-setup", ADMIN, goto("/setup/accounts/demo/scim/")),
    PortalPage("test-result-success", ADMIN, goto(lambda w: w.test_success_url), main=True),
    PortalPage("test-result-refusal", ADMIN, goto(lambda w: w.test_refusal_url)),
    PortalPage("users", ADMIN, goto("/admin/users"), main=True),
    PortalPage("user", ADMIN, goto(lambda w: f"/admin/users/{w.alice_id}")),
    PortalPage("user-new", ADMIN, goto("/admin/users/new")),
    PortalPage("user-deactivate", ADMIN, goto(lambda w: f"/admin/users/{w.alice_id}/deactivate")),
    PortalPage("import", ADMIN, goto("/admin/import")),
    PortalPage("import-preview", ADMIN, _csv(CSV_PREVIEW), main=True),
    PortalPage("import-refused", ADMIN, _csv(CSV_REFUSED)),
    PortalPage("import-result", ADMIN, _csv_applied),
    PortalPage("support-sessions", SUPPORT, goto("/support/sessions"), main=True),
    PortalPage("support-session", SUPPORT, goto(lambda w: f"/support/sessions/{w.alice_session_id}")),
    PortalPage("support-accounts", SUPPORT, goto("/support/accounts")),
    PortalPage("support-audit", SUPPORT, goto("/support/audit")),
    PortalPage("your-sessions", ADMIN, goto("/me/sessions"), main=True),
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


def build_world(live_server: Server, browser, **context_options: object) -> World:
    """Create the data, sign Alice (admin) and Sam (support) in, and run two test sign-ins."""
    with live_server.app.app_context():
        demo = ensure_demo()
        account = demo.account
        create_user(account, SUPPORT, roles=["support"], name="Sam Support", actor="test")
        _key, cert_pem = demo_idp_key_pair()
        draft: dict[str, int] = {}
        imported: dict[str, int] = {}
        for key in PLUGIN_KEYS:
            draft[key] = create_connection(account, key, name=f"{key.title()} draft").id
            connection = create_connection(account, key, name=f"{key.title()} production")
            connection.idp_entity_id = demo_idp_entity_id()
            connection.idp_sso_url = f"{live_server.url}/demo-idp/sso"
            add_certificates(connection, [certificate_info(cert_pem)])
            imported[key] = connection.id
        db.session.commit()

    tabs: dict[str | None, object] = {}
    for who in (None, ADMIN, SUPPORT):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        if who:
            demo_sign_in(tab, live_server.url, who)
        tabs[who] = tab
    # Alice on a second device, so that "your sessions" has a session to sign out.
    other_device = browser.new_context(**context_options)
    demo_sign_in(other_device.new_page(), live_server.url, ADMIN)
    other_device.close()
    world = World(url=live_server.url, tabs=tabs, draft=draft, imported=imported)
    admin_tab = world.tab(ADMIN)
    world.test_success_url = _test_sign_in(admin_tab, world, imported["okta"], ADMIN)
    world.test_refusal_url = _test_sign_in(admin_tab, world, imported["okta"], "dave@demo.example")
    with live_server.app.app_context():
        alice = db.session.scalar(select(User).where(User.email == ADMIN))
        assert alice is not None
        world.alice_id = alice.id
        world.alice_session_id = db.session.scalar(
            select(UserSession.id).where(UserSession.user_id == alice.id).order_by(UserSession.id)
        )
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
