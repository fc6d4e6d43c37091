"""The users list shows each user's last sign-in (a relative time, the exact one on hover), read
with one grouped query per page, not one per user."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import event

from app.extensions import db
from app.sessions import create_session
from app.timeutil import utcnow
from tests.helpers.web import another_browser, log_in


def _cell(page: str, email: str) -> str:
    row = re.search(rf'data-email="{re.escape(email)}">.*?</tr>', page, re.DOTALL)
    assert row, email
    cell = re.search(r'data-testid="last-sign-in">(.*?)</td>', row.group(0), re.DOTALL)
    assert cell
    return cell.group(1)


def _statements(app, path: str, browser) -> tuple[int, str]:
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        page = browser.get(path).get_data(as_text=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return len(seen), page


def test_last_sign_in_is_the_newest_session_and_never_says_never(app, acme, make_user):
    admin = acme["admin"]
    browser = another_browser(app)
    log_in(browser, admin)
    agent = acme["agent"]
    old = create_session(agent, app_name="desktop", ip=None, user_agent=None).session
    new = create_session(agent, app_name="mobile", ip=None, user_agent=None).session
    old.created_at = utcnow() - dt.timedelta(days=9)
    new.created_at = utcnow() - dt.timedelta(hours=2, minutes=10)
    new.revoked_at, new.revoked_reason = utcnow(), "logout"  # a sign-in that has since ended still counts
    make_user(acme["account"], "newcomer@acme.example", "agent")
    db.session.commit()

    page = browser.get("/admin/users").get_data(as_text=True)
    assert "<th>Last sign-in</th>" in page and '<table class="stack" data-testid="users-table">' in page
    cell = _cell(page, "agent@acme.example")
    assert f'datetime="{new.created_at.isoformat(timespec="seconds")}Z"' in cell
    assert f'title="{new.created_at:%Y-%m-%d %H:%M:%S} UTC"' in cell and ">2 hours ago</time>" in cell
    assert "data-local-time" in cell
    assert "Never" in _cell(page, "newcomer@acme.example")
    assert 'data-label="Last sign-in"' in page and 'src="/static/js/localtime.js"' in page


def test_no_query_per_user(app, acme, make_user):
    browser = another_browser(app)
    log_in(browser, acme["admin"])
    few, _ = _statements(app, "/admin/users", browser)
    for n in range(30):
        user = make_user(acme["account"], f"user{n:02d}@acme.example", "agent")
        create_session(user, app_name="desktop", ip=None, user_agent=None)
    db.session.commit()
    many, page = _statements(app, "/admin/users", browser)
    assert page.count('data-testid="ago"') >= 31
    assert many == few
