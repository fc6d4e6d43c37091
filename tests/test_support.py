"""The support console: sessions of every account with filters and keyset pages, a session's detail,
revoking one session or all of a user's, the audit log, the accounts; staff only, every action
audited, and bad filters answered with a message, never a 500."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from app import audit
from app.extensions import db
from app.models import AuditEvent, UserSession
from app.models.idp_connection import DRAFT
from app.services.users import deactivate_user
from app.sessions import create_session
from app.timeutil import utcnow
from tests.helpers.audit import audit_events
from tests.helpers.signin import sso_sign_in
from tests.helpers.web import another_browser, app_session, bearer, csrf_from

NOW = utcnow()


@pytest.fixture
def staff(app, make_account, make_user, make_connection, idp):
    """A signed-in support staff member (their own account, their own IdP connection)."""
    account = make_account("phoneco", "Phone Co (staff)")
    user = make_user(account, "helpdesk@phoneco.example", "support")
    browser = another_browser(app)
    sso_sign_in(browser, idp, make_connection(account), "helpdesk@phoneco.example")
    return {"client": browser, "user": user, "account": account}


def _session(
    user,
    *,
    app_name="portal",
    created_days_ago=0.0,
    used_days_ago=None,
    revoked=False,
    expired=False,
    ip="198.51.100.7",
):
    """A session with chosen times, as if it had lived them."""
    new = create_session(user, app_name=app_name, ip=ip, user_agent=f"Agent of {user.email}")
    created = NOW - dt.timedelta(days=created_days_ago)
    used = NOW - dt.timedelta(days=created_days_ago if used_days_ago is None else used_days_ago)
    session = new.session
    session.created_at, session.last_used_at = created, used
    session.expires_at = NOW - dt.timedelta(hours=1) if expired else used + dt.timedelta(days=21)
    if revoked:
        session.revoked_at, session.revoked_reason = NOW, "logout"
    db.session.commit()
    return new


def _ids(html: str) -> list[int]:
    return [int(value) for value in re.findall(r'data-testid="session-row" data-session-id="(\d+)"', html)]


def _link(html: str, testid: str) -> str | None:
    match = re.search(rf'href="([^"]+)" data-testid="{testid}"', html)
    return match.group(1).replace("&amp;", "&") if match else None


def test_only_support_staff_get_in(client, acme, sign_in, staff):
    assert client.get("/support/sessions").status_code == 302  # anonymous: to sign-in
    assert sign_in(acme["connection"], "admin@acme.example").status_code == 302
    for path in ("/support/sessions", "/support/audit", "/support/accounts", "/support/sessions/1"):
        assert client.get(path).status_code == 403
    assert staff["client"].get("/support/sessions").status_code == 200


def test_sessions_of_every_account_filtered(staff, acme, make_account, make_user):
    globex = make_user(make_account("globex", "Globex"), "boss@globex.example", "admin,agent")
    admin, agent = acme["admin"], acme["agent"]
    recent = _session(admin, created_days_ago=1)
    desktop = _session(agent, app_name="desktop", created_days_ago=2)
    revoked = _session(agent, app_name="mobile", created_days_ago=3, revoked=True)
    expired = _session(admin, created_days_ago=40, expired=True)
    old_but_used = _session(globex, created_days_ago=30, used_days_ago=0.5)
    browse = staff["client"]

    everything = _ids(browse.get("/support/sessions").get_data(as_text=True))
    staff_session = everything[0]  # the staff member's own sign-in is the newest
    assert everything[1:] == [
        recent.session.id,
        desktop.session.id,
        revoked.session.id,
        old_but_used.session.id,
        expired.session.id,
    ]

    def ids(**query):
        response = browse.get("/support/sessions", query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)
        return _ids(response.get_data(as_text=True))

    assert ids(email="AGENT@acme.example ") == [desktop.session.id, revoked.session.id]
    assert ids(account="globex") == [old_but_used.session.id]
    assert ids(account="acme", app="portal") == [recent.session.id, expired.session.id]
    assert ids(state="revoked") == [revoked.session.id]
    assert ids(state="expired") == [expired.session.id]
    assert ids(state="active", account="acme") == [recent.session.id, desktop.session.id]
    # A session created long ago but used since is active. Active sessions are listed by expiry,
    # latest first (the most recently used first), not by creation.
    assert ids(state="active") == [staff_session, old_but_used.session.id, recent.session.id, desktop.session.id]
    today = NOW.date()
    # A last-use filter lists the most recently used first.
    assert ids(used_from=str(today - dt.timedelta(days=1))) == [
        staff_session,
        old_but_used.session.id,
        recent.session.id,
    ]
    assert ids(used_to=str(today - dt.timedelta(days=2))) == [
        desktop.session.id,
        revoked.session.id,
        expired.session.id,
    ]
    assert ids(used_from=str(today - dt.timedelta(days=3)), used_to=str(today - dt.timedelta(days=2))) == [
        desktop.session.id,
        revoked.session.id,
    ]


def test_unknown_email_or_account_says_so(staff):
    page = (
        staff["client"].get("/support/sessions", query_string={"email": "nobody@acme.example"}).get_data(as_text=True)
    )
    assert "No user has the email nobody@acme.example." in page and not _ids(page)
    page = staff["client"].get("/support/sessions", query_string={"account": "nope"}).get_data(as_text=True)
    assert "There is no account “nope”." in page


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"used_from": "yesterday"}, "FILTER_DATE_INVALID"),
        ({"used_to": "2025-13-45"}, "FILTER_DATE_INVALID"),
        ({"used_from": "0001-01-01"}, "FILTER_DATE_INVALID"),
        ({"used_from": "2025-03-02", "used_to": "2025-03-01"}, "FILTER_DATE_RANGE"),
        ({"used_from": "'; DROP TABLE sessions; --"}, "FILTER_DATE_INVALID"),
        ({"state": "zombie"}, "FILTER_STATE_INVALID"),
        ({"app": "fax"}, "FILTER_APP_INVALID"),
        ({"after": "not-a-cursor"}, "CURSOR_INVALID"),
        ({"before": "99999999999999999999.1"}, "CURSOR_INVALID"),
    ],
)
def test_nonsense_filters_get_a_clear_message(staff, query, code):
    response = staff["client"].get("/support/sessions", query_string=query)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert f'data-testid="error-code">{code}<' in page
    assert 'data-testid="filter-error"' in page


def test_keyset_pages_walk_every_session_once_even_with_equal_times(staff, acme):
    agent = acme["agent"]
    for number in range(120):
        # Sessions created in the same second share created_at: the id breaks the tie.
        _session(agent, app_name="desktop", created_days_ago=number // 7)
    browse = staff["client"]
    seen: list[int] = []
    path = "/support/sessions?app=desktop"
    pages = 0
    while path:
        html = browse.get(path).get_data(as_text=True)
        seen += _ids(html)
        pages += 1
        path = _link(html, "page-older")
    assert pages == 3 and len(seen) == 120 == len(set(seen))
    in_db = [
        s.id
        for s in db.session.query(UserSession)
        .filter_by(app="desktop")
        .order_by(UserSession.created_at.desc(), UserSession.id.desc())
    ]
    assert seen == in_db

    last_page = browse.get(f"/support/sessions?app=desktop&after={_cursor_after(browse, 2)}").get_data(as_text=True)
    back = browse.get(_link(last_page, "page-newer")).get_data(as_text=True)
    assert _ids(back) == in_db[50:100]
    assert _link(back, "page-newer") is not None and _link(back, "page-older") is not None


def _cursor_after(browse, pages: int) -> str:
    html = browse.get("/support/sessions?app=desktop").get_data(as_text=True)
    for _ in range(pages - 1):
        html = browse.get(_link(html, "page-older")).get_data(as_text=True)
    return _link(html, "page-older").split("after=")[1].split("&")[0]


def test_session_detail_shows_everything_and_the_look_is_audited(staff, acme):
    new = _session(acme["agent"], app_name="mobile", ip="203.0.113.50")
    new.session.connection_id = acme["connection"].id
    new.session.saml_name_id = "agent@acme.example"
    db.session.commit()
    response = staff["client"].get(f"/support/sessions/{new.session.id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    for text in (
        "agent@acme.example",
        "mobile",
        "203.0.113.50",
        "Agent of agent@acme.example",
        "Acme Inc (acme)",
        f"connection {acme['connection'].id}",
        new.session.created_at.strftime("%Y-%m-%d %H:%M"),
        new.session.expires_at.strftime("%Y-%m-%d %H:%M"),
    ):
        assert text in page, text
    event = audit_events("support.session_view")[-1]
    assert event.actor == "helpdesk@phoneco.example" and event.details == {"session_id": new.session.id}


def test_staff_revokes_one_session_and_its_next_request_is_refused(app, staff, acme, idp):
    agent_browser = another_browser(app)
    sso_sign_in(agent_browser, idp, acme["connection"], "admin@acme.example")
    phone = app_session(acme["admin"], "mobile")
    target = db.session.query(UserSession).filter_by(user_id=acme["admin"].id, app="portal").one()
    browse = staff["client"]
    token = csrf_from(browse, f"/support/sessions/{target.id}")

    response = browse.post(f"/support/sessions/{target.id}/revoke", data={"csrf_token": token})
    assert response.status_code == 302
    assert "is revoked" in browse.get(response.location).get_data(as_text=True)
    refused = agent_browser.get("/portal/")
    assert refused.status_code == 302 and refused.location.startswith("/login")
    assert agent_browser.get("/api/v1/me", headers=bearer(phone.token)).status_code == 200  # the others go on
    db.session.expire_all()
    assert db.session.get(UserSession, target.id).revoked_reason == "revoked_by_support"
    event = audit_events("session.revoke")[-1]
    assert event.actor == "helpdesk@phoneco.example" and event.subject_email == "admin@acme.example"
    assert event.details["session_id"] == target.id

    again = browse.post(f"/support/sessions/{target.id}/revoke", data={"csrf_token": token})
    assert "had already ended" in browse.get(again.location).get_data(as_text=True)
    assert len(audit_events("session.revoke")) == 1


def test_staff_revokes_every_session_of_a_user(staff, acme):
    agent = acme["agent"]
    tokens = [app_session(agent, "desktop").token, app_session(agent, "mobile").token]
    browse = staff["client"]
    response = browse.post(
        f"/support/users/{agent.id}/revoke-sessions", data={"csrf_token": csrf_from(browse, "/support/sessions")}
    )
    assert response.status_code == 302 and response.location == "/support/sessions?email=agent@acme.example"
    assert "Revoked 2 sessions of agent@acme.example." in browse.get(response.location).get_data(as_text=True)
    for token in tokens:
        assert browse.get("/api/v1/me", headers=bearer(token)).status_code == 401
    event = audit_events("session.revoke_all")[-1]
    assert event.details == {"revoked": 2, "reason": "revoked_by_support"} and event.actor == "helpdesk@phoneco.example"


def test_revoking_what_does_not_exist_is_a_clear_404_and_changes_nothing(staff, acme):
    live = app_session(acme["agent"], "desktop")
    browse = staff["client"]
    token = csrf_from(browse, "/support/sessions")
    for response, code in (
        (browse.get("/support/sessions/987654"), "SESSION_NOT_FOUND"),
        (browse.post("/support/sessions/987654/revoke", data={"csrf_token": token}), "SESSION_NOT_FOUND"),
        (browse.post("/support/users/987654/revoke-sessions", data={"csrf_token": token}), "USER_NOT_FOUND"),
    ):
        assert response.status_code == 404
        assert f'data-testid="error-code">{code}<' in response.get_data(as_text=True)
    assert not audit_events("session.revoke") and not audit_events("session.revoke_all")
    assert browse.get("/api/v1/me", headers=bearer(live.token)).status_code == 200


def test_revoke_needs_the_csrf_token(staff, acme):
    live = app_session(acme["agent"], "desktop")
    response = staff["client"].post(f"/support/sessions/{live.session.id}/revoke")
    assert response.status_code == 400 and "CSRF_FAILED" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(UserSession, live.session.id).revoked_at is None


def test_audit_log_with_filters_and_pages(staff, acme, make_account):
    make_account("globex", "Globex")
    for number in range(55):
        audit.record(
            "signin.sso",
            outcome="failure",
            error_code="USER_NOT_FOUND",
            account_id=acme["account"].id,
            subject_email=f"stranger{number}@acme.example",
        )
    deactivate_user(acme["agent"], actor="admin@acme.example")
    old = audit.record("user.create", account_id=acme["account"].id, subject_email="old@acme.example")
    old.created_at = NOW - dt.timedelta(days=400)
    db.session.commit()
    browse = staff["client"]

    def rows(**query):
        response = browse.get("/support/audit", query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)
        html = response.get_data(as_text=True)
        return re.findall(r'data-testid="audit-row" data-action="([^"]+)"', html), html

    actions, html = rows()
    assert len(actions) == 50 and _link(html, "page-older")
    actions, _ = rows(action="user.")
    assert "user.deactivate" in actions and "signin.sso" not in actions
    actions, _ = rows(outcome="failure", error_code="user_not_found")
    assert len(actions) == 50 and set(actions) == {"signin.sso"}
    actions, _ = rows(email="AGENT@acme.example")
    assert actions == ["user.deactivate", "session.revoke_all", "user.create"]
    actions, _ = rows(actor="ADMIN@acme.example")
    assert actions == ["user.deactivate", "session.revoke_all"]
    actions, _ = rows(email="helpdesk@phoneco.example")  # the staff member's own sign-in
    assert "signin.sso" in actions
    actions, _ = rows(account="globex")
    assert actions == []
    actions, _ = rows(date_to=str((NOW - dt.timedelta(days=300)).date()))
    assert actions == ["user.create"]
    for bad, code in (
        ({"date_from": "soon"}, "FILTER_DATE_INVALID"),
        ({"action": "drop table;"}, "FILTER_ACTION_INVALID"),
        ({"outcome": "maybe"}, "FILTER_OUTCOME_INVALID"),
        ({"error_code": "<b>"}, "FILTER_CODE_INVALID"),
    ):
        response = browse.get("/support/audit", query_string=bad)
        assert response.status_code == 400 and code in response.get_data(as_text=True)


def test_accounts_with_user_counts_and_sso_status(staff, acme, make_account, make_user, make_connection):
    deactivate_user(acme["agent"])
    db.session.commit()
    globex = make_account("globex", "Globex", sso_required=True)
    make_user(globex, "boss@globex.example", "admin")
    make_connection(globex, status=DRAFT)
    make_account("initech", "Initech")
    page = staff["client"].get("/support/accounts").get_data(as_text=True)

    def row(slug: str) -> str:
        return page.split(f'data-slug="{slug}"')[1].split("</tr>")[0]

    assert 'data-testid="account-users">2<' in row("acme") and 'data-testid="account-active">1<' in row("acme")
    assert ">enabled<" in row("acme")
    assert 'data-testid="account-users">1<' in row("globex") and "set up, not enabled" in row("globex")
    assert "SSO required" in row("globex")
    assert 'data-testid="account-users">0<' in row("initech") and "not set up" in row("initech")
    searched = staff["client"].get("/support/accounts", query_string={"q": "GLOB"}).get_data(as_text=True)
    assert 'data-slug="globex"' in searched and 'data-slug="acme"' not in searched


def test_every_staff_revocation_is_in_the_audit_log_page(staff, acme):
    live = app_session(acme["agent"], "desktop")
    browse = staff["client"]
    browse.post(
        f"/support/sessions/{live.session.id}/revoke", data={"csrf_token": csrf_from(browse, "/support/sessions")}
    )
    html = browse.get("/support/audit", query_string={"action": "session.revoke"}).get_data(as_text=True)
    assert 'data-action="session.revoke"' in html and "helpdesk@phoneco.example" in html
    assert (
        db.session.query(AuditEvent).filter_by(action="session.revoke", actor="helpdesk@phoneco.example").count() == 1
    )


def _walk(browse, query: dict[str, str]) -> tuple[list[list[int]], str]:
    """Every page of a filtered list, following the Next/Older links; and the last page's HTML."""
    response = browse.get("/support/sessions", query_string=query)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    pages = [_ids(html)]
    while (link := _link(html, "page-older")) is not None:
        html = browse.get(link).get_data(as_text=True)
        pages.append(_ids(html))
    return pages, html


def _used_since(days: int):
    return dt.datetime.combine((NOW - dt.timedelta(days=days)).date(), dt.time.min)


@pytest.mark.parametrize(
    ("query", "column", "header", "matches"),
    [
        ({}, "created_at", "Created", lambda s, now, acme: True),
        ({"state": "active"}, "expires_at", "Expires", lambda s, now, acme: s.is_live(now)),
        (
            {"state": "expired"},
            "expires_at",
            "Expires",
            lambda s, now, acme: s.revoked_at is None and s.expires_at <= now,
        ),
        ({"state": "revoked"}, "created_at", "Created", lambda s, now, acme: s.revoked_at is not None),
        ({"app": "desktop"}, "created_at", "Created", lambda s, now, acme: s.app == "desktop"),
        (
            {"used_from": str(_used_since(20).date())},
            "last_used_at",
            "Last used",
            lambda s, now, acme: s.last_used_at >= _used_since(20),
        ),
        (
            {"account": "acme", "state": "expired"},
            "expires_at",
            "Expires",
            lambda s, now, acme: s.account_id == acme and s.revoked_at is None and s.expires_at <= now,
        ),
    ],
)
def test_every_filter_pages_in_its_order_to_an_exact_last_page(staff, acme, query, column, header, matches):
    """Each filter's order is the one its header shows; walking Next from the first page visits
    every matching session once, in that order, and the last page holds exactly the rest with no
    link further (its Previous link leads back to the page before it)."""
    apps = ("portal", "desktop", "mobile")
    for number in range(210):
        # Creation and last use in different orders, times shared by several sessions (the id
        # breaks ties; every expired one here expired at the same instant), and every state.
        _session(
            acme["admin"] if number % 2 else acme["agent"],
            app_name=apps[number % 3],
            created_days_ago=40 - number % 40,
            used_days_ago=(number * 7) % 30 if number % 40 else None,
            revoked=number % 3 == 0,
            expired=number % 5 == 0,
        )
    now = utcnow()
    expected = sorted(
        (s for s in db.session.query(UserSession) if matches(s, now, acme["account"].id)),
        key=lambda s: (getattr(s, column), s.id),
        reverse=True,
    )
    assert len(expected) > 50  # two pages at least
    browse = staff["client"]
    first = browse.get("/support/sessions", query_string=query).get_data(as_text=True)
    assert re.search(rf'data-testid="sorted-by">{header} ↓<', first)
    pages, last_html = _walk(browse, query)
    assert [i for page in pages for i in page] == [s.id for s in expected]
    assert all(len(page) == 50 for page in pages[:-1])
    assert len(pages[-1]) == len(expected) - 50 * (len(pages) - 1) > 0
    assert _link(last_html, "page-older") is None
    if len(pages) > 1:
        back = browse.get(_link(last_html, "page-newer")).get_data(as_text=True)
        assert _ids(back) == pages[-2]
