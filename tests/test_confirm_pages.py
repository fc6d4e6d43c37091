"""One confirmation pattern for every destructive action: a GET page that names what will happen
(who, how many, with plurals right), changes nothing, and posts with a CSRF token to the action's
existing endpoint; the POST without the token is refused; another account's objects are 404."""

from __future__ import annotations

import datetime as dt
import html as html_lib
import re
from dataclasses import dataclass

import pytest

from app.extensions import db
from app.models import IdpConnection, ScimToken, User, UserSession
from app.models.idp_connection import DRAFT, ENABLED, IdpCertificate
from app.services.scim_tokens import create_token
from app.sessions import create_session
from app.timeutil import utcnow
from tests.helpers.web import another_browser, csrf_from, log_in

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1"
)


def _text(page: str) -> str:
    """The page's words, tags stripped and entities decoded, spaces collapsed."""
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _sessions(user: User, *user_agents: str | None, app_name: str = "portal") -> list[UserSession]:
    made = [create_session(user, app_name=app_name, ip=None, user_agent=ua).session for ua in user_agents]
    db.session.commit()
    return made


def _live(user: User) -> int:
    now = utcnow()
    return db.session.query(UserSession).filter(UserSession.user_id == user.id, UserSession.live_at(now)).count()


def _assert_confirm_page(response, *sentences: str) -> str:
    """A confirmation page: 200, one h1, the title block, the sentence(s), CSRF-protected form,
    the destructive button and a cancel link."""
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    text = _text(page)
    for sentence in sentences:
        assert sentence in text, (sentence, text)
    assert page.count("<h1") == 1
    assert re.search(r'<form method="post" action="[^"]+" novalidate data-testid="confirm-form">', page)
    assert re.search(r'name="csrf_token" value="[^"]+"', page)
    assert 'class="danger" data-testid="confirm"' in page and 'data-testid="cancel"' in page
    return page


@dataclass
class World:
    app: object
    acme: dict
    globex_admin: User
    staff: User


@pytest.fixture
def world(app, acme, make_account, make_user) -> World:
    acme["connection"].name = "Okta"
    acme["admin"].name = "Alice"
    db.session.commit()
    globex = make_account("globex", "Globex")
    return World(
        app,
        acme,
        make_user(globex, "boss@globex.example", "admin"),
        make_user(make_account("phoneco", "Phone Co"), "helpdesk@phoneco.example", "support"),
    )


def _browser(world: World, user: User):
    browser = another_browser(world.app)
    log_in(browser, user)
    return browser


# --- your sessions ----------------------------------------------------------------------------


def test_sign_out_one_of_your_sessions(world):
    admin = world.acme["admin"]
    me = _browser(world, admin)
    (laptop,) = _sessions(admin, CHROME_MAC)
    laptop.last_used_at = utcnow() - dt.timedelta(hours=3, minutes=1)
    db.session.commit()
    url = f"/me/sessions/{laptop.id}/revoke"
    _assert_confirm_page(
        me.get(url), "Your Chrome on macOS session, last used 3 hours ago, will be signed out at once."
    )
    assert laptop.is_live()  # looking changes nothing
    assert me.post(url).status_code == 400 and db.session.get(UserSession, laptop.id).is_live()
    assert me.post(url, data={"csrf_token": csrf_from(me, url)}).status_code == 302
    db.session.refresh(laptop)
    assert laptop.revoked_reason == "signed_out_by_owner"
    # Someone else's session: 404 on the page as on the POST.
    (theirs,) = _sessions(world.globex_admin, CHROME_MAC)
    assert me.get(f"/me/sessions/{theirs.id}/revoke").status_code == 404


def test_sign_out_your_other_sessions_counts_sessions_and_devices(world):
    admin = world.acme["admin"]
    me = _browser(world, admin)
    _sessions(admin, CHROME_MAC, CHROME_MAC, SAFARI_IPHONE)
    _assert_confirm_page(
        me.get("/me/sessions/revoke-others"),
        "You will be signed out of 3 other sessions on 2 devices; this session stays signed in.",
    )
    assert _live(admin) == 4
    assert me.post("/me/sessions/revoke-others").status_code == 400 and _live(admin) == 4
    token = csrf_from(me, "/me/sessions/revoke-others")
    assert me.post("/me/sessions/revoke-others", data={"csrf_token": token}).status_code == 302
    assert _live(admin) == 1


def test_one_other_session_is_singular(world):
    admin = world.acme["admin"]
    me = _browser(world, admin)
    _sessions(admin, CHROME_MAC)
    _assert_confirm_page(
        me.get("/me/sessions/revoke-others"),
        "You will be signed out of 1 other session on 1 device; this session stays signed in.",
    )


# --- support ----------------------------------------------------------------------------------


def test_support_revokes_one_session_after_confirming(world):
    agent = world.acme["agent"]
    staff = _browser(world, world.staff)
    (desktop,) = _sessions(agent, "PhonePortalDesktop/2.3.1 (Windows NT 10.0; Win64; x64)", app_name="desktop")
    url = f"/support/sessions/{desktop.id}/revoke"
    page = _assert_confirm_page(
        staff.get(url),
        "agent@acme.example's Desktop app on Windows session, last used just now, will be signed out at once.",
    )
    assert f'href="/support/sessions/{desktop.id}" role="button"' in page  # cancel goes back to the session
    assert db.session.get(UserSession, desktop.id).is_live()
    assert staff.post(url).status_code == 400 and db.session.get(UserSession, desktop.id).is_live()
    assert staff.post(url, data={"csrf_token": csrf_from(staff, url)}).status_code == 302
    assert db.session.get(UserSession, desktop.id).revoked_reason == "revoked_by_support"
    assert staff.get("/support/sessions/987654/revoke").status_code == 404
    # A customer admin is not staff: the console's pages are not theirs.
    assert _browser(world, world.globex_admin).get(url).status_code in (403, 404)


def test_support_revokes_all_of_a_users_sessions(world):
    agent = world.acme["agent"]
    staff = _browser(world, world.staff)
    first, *_ = _sessions(agent, CHROME_MAC, SAFARI_IPHONE, None, app_name="desktop")
    url = f"/support/users/{agent.id}/revoke-sessions"
    page = _assert_confirm_page(
        staff.get(url, query_string={"back_to_session": first.id}),
        "agent@acme.example will be signed out of 3 open sessions on 3 devices.",
    )
    assert f'name="back_to_session" value="{first.id}"' in page
    assert _live(agent) == 3
    assert staff.post(url).status_code == 400 and _live(agent) == 3
    response = staff.post(url, data={"csrf_token": csrf_from(staff, url), "back_to_session": str(first.id)})
    assert response.status_code == 302 and response.location == f"/support/sessions/{first.id}"
    assert _live(agent) == 0
    _assert_confirm_page(staff.get(url), "agent@acme.example is not signed in anywhere right now: no session ends.")
    assert staff.get("/support/users/987654/revoke-sessions").status_code == 404


# --- the admin's users ------------------------------------------------------------------------


def test_admin_signs_a_user_out_everywhere(world):
    agent = world.acme["agent"]
    admin = _browser(world, world.acme["admin"])
    _sessions(agent, CHROME_MAC, CHROME_MAC, app_name="desktop")
    user_page = admin.get(f"/admin/users/{agent.id}").get_data(as_text=True)
    assert f'href="/admin/users/{agent.id}/revoke-sessions"' in user_page
    url = f"/admin/users/{agent.id}/revoke-sessions"
    _assert_confirm_page(admin.get(url), "agent@acme.example will be signed out of 2 open sessions on 1 device.")
    assert _live(agent) == 2
    assert admin.post(url).status_code == 400 and _live(agent) == 2
    assert admin.post(url, data={"csrf_token": csrf_from(admin, url)}).status_code == 302
    assert _live(agent) == 0
    assert {s.revoked_reason for s in db.session.query(UserSession).filter_by(user_id=agent.id)} == {"revoked_by_admin"}
    stranger = world.globex_admin
    assert admin.get(f"/admin/users/{stranger.id}/revoke-sessions").status_code == 404


def test_deactivate_names_the_person_and_counts(world):
    agent = world.acme["agent"]
    agent.name = "Bob"
    db.session.commit()
    admin = _browser(world, world.acme["admin"])
    _sessions(agent, CHROME_MAC, SAFARI_IPHONE, app_name="mobile")
    url = f"/admin/users/{agent.id}/deactivate"
    _assert_confirm_page(
        admin.get(url),
        "Bob will be signed out of 2 open sessions on 2 devices and cannot sign in again until an admin reactivates them.",
    )
    assert agent.status == "active"
    assert admin.post(url).status_code == 400 and db.session.get(User, agent.id).status == "active"
    assert admin.get(f"/admin/users/{world.globex_admin.id}/deactivate").status_code == 404


def test_delete_user_needs_the_tick_box(world):
    agent = world.acme["agent"]
    admin = _browser(world, world.acme["admin"])
    _sessions(agent, CHROME_MAC, app_name="desktop")
    url = f"/admin/users/{agent.id}/delete"
    page = _assert_confirm_page(
        admin.get(url), "agent@acme.example will be deleted for good and signed out of 1 open session on 1 device."
    )
    assert 'data-testid="confirm-box"' in page
    assert admin.post(url, data={"confirm": "y"}).status_code == 400
    assert db.session.get(User, agent.id) is not None
    assert admin.get(f"/admin/users/{world.globex_admin.id}/delete").status_code == 404


# --- SSO setup --------------------------------------------------------------------------------


def test_disable_connection_names_the_idp_the_account_and_the_users(world, make_user):
    connection = world.acme["connection"]
    admin = _browser(world, world.acme["admin"])
    for n in range(11):
        make_user(world.acme["account"], f"user{n}@acme.example", "agent")
    _sessions(world.acme["agent"], CHROME_MAC, app_name="desktop")
    db.session.query(UserSession).filter_by(user_id=world.acme["agent"].id).update({"connection_id": connection.id})
    db.session.commit()
    url = f"/setup/connections/{connection.id}/disable"
    page = _assert_confirm_page(
        admin.get(url),
        "Okta will stop accepting sign-ins for Acme Inc; 13 users who sign in with SSO cannot use it until it is enabled again",
        "1 open session started through it stays signed in until it ends.",
    )
    assert 'name="confirm" value="y"' in page
    assert db.session.get(IdpConnection, connection.id).status == ENABLED
    assert admin.post(url, data={"confirm": "y"}).status_code == 400
    assert db.session.get(IdpConnection, connection.id).status == ENABLED
    assert admin.post(url, data={"csrf_token": csrf_from(admin, url), "confirm": "y"}).status_code == 302
    assert db.session.get(IdpConnection, connection.id).status != ENABLED
    assert _browser(world, world.globex_admin).get(url).status_code == 404
    # Staff read, never change: the confirmation page is a form for a change.
    assert _browser(world, world.staff).get(url).status_code == 403


def test_delete_connection_page(world, make_connection):
    draft = make_connection(world.acme["account"], status=DRAFT)
    draft.name = "Spare IdP"
    db.session.commit()
    admin = _browser(world, world.acme["admin"])
    url = f"/setup/connections/{draft.id}/delete"
    page = _assert_confirm_page(
        admin.get(url),
        "The draft connection Spare IdP will be deleted for good; nobody signs in through it now.",
        "Its settings and 1 certificate are removed",
    )
    assert 'data-testid="delete-confirm"' in page and 'data-testid="confirm-box"' in page
    assert admin.post(url, data={"confirm": "y"}).status_code == 400
    assert db.session.get(IdpConnection, draft.id) is not None
    assert _browser(world, world.globex_admin).get(url).status_code == 404


def test_remove_certificate_page(world):
    connection = world.acme["connection"]
    later = utcnow() + dt.timedelta(days=400)
    connection.certificates.append(IdpCertificate(pem="x", fingerprint_sha256="AB:" * 31 + "AB", not_after=later))
    db.session.commit()
    new_cert = connection.certificates[-1]
    admin = _browser(world, world.acme["admin"])
    url = f"/setup/connections/{connection.id}/certificates/{new_cert.id}/remove"
    _assert_confirm_page(
        admin.get(url),
        f"Okta sign-ins signed with the certificate {'AB:' * 7}AB… (expires {later:%Y-%m-%d}) will be refused.",
        "1 other certificate stays trusted.",
    )
    assert len(db.session.get(IdpConnection, connection.id).certificates) == 2
    assert admin.post(url).status_code == 400
    assert len(db.session.get(IdpConnection, connection.id).certificates) == 2
    assert admin.post(url, data={"csrf_token": csrf_from(admin, url)}).status_code == 302
    assert len(db.session.get(IdpConnection, connection.id).certificates) == 1
    # The last certificate of an enabled connection cannot go: no page that would fail.
    last = db.session.get(IdpConnection, connection.id).certificates[0]
    refused = admin.get(f"/setup/connections/{connection.id}/certificates/{last.id}/remove")
    assert refused.status_code == 302
    assert _browser(world, world.globex_admin).get(url).status_code == 404


def test_revoke_scim_token_page(world):
    account = world.acme["account"]
    okta = create_token(account, name="Okta", actor="admin@acme.example")
    create_token(account, name="Spare", actor="admin@acme.example")
    db.session.commit()
    token = db.session.query(ScimToken).filter_by(name="Okta").one()
    token.last_used_at = utcnow() - dt.timedelta(minutes=5)
    db.session.commit()
    admin = _browser(world, world.acme["admin"])
    url = f"/setup/accounts/acme/scim/tokens/{token.id}/revoke"
    page = _assert_confirm_page(
        admin.get(url),
        "Your identity provider's next request with the token “Okta” (last used 5 minutes ago) will be refused",
        "1 other live token keeps working.",
    )
    assert f'name="token_id" value="{token.id}"' in page and okta.token not in page
    assert db.session.get(ScimToken, token.id).revoked_at is None
    post_url = "/setup/accounts/acme/scim/tokens/revoke"
    assert admin.post(post_url, data={"token_id": str(token.id)}).status_code == 400
    assert db.session.get(ScimToken, token.id).revoked_at is None
    response = admin.post(post_url, data={"csrf_token": csrf_from(admin, url), "token_id": str(token.id)})
    assert response.status_code == 302 and db.session.get(ScimToken, token.id).revoked_at is not None
    # Another account's admin: their own slug does not reach acme's token, acme's slug is 404.
    other = _browser(world, world.globex_admin)
    assert other.get(url).status_code == 404
    assert other.get(f"/setup/accounts/globex/scim/tokens/{token.id}/revoke").status_code == 404


def test_signed_out_by_an_admin_is_told_so_at_the_next_click(world, make_user):
    colleague = make_user(world.acme["account"], "carol@acme.example", "admin")
    theirs = _browser(world, colleague)
    assert theirs.get("/portal/").status_code == 200
    admin = _browser(world, world.acme["admin"])
    url = f"/admin/users/{colleague.id}/revoke-sessions"
    assert admin.post(url, data={"csrf_token": csrf_from(admin, url)}).status_code == 302
    response = theirs.get("/portal/")
    assert response.status_code == 302 and "/login" in response.location
    page = theirs.get(response.location).get_data(as_text=True)
    assert 'data-testid="session-ended"' in page
    assert "You were signed out by your company&#39;s administrator." in page
