"""The support console's email filter matches part of an address, case-insensitively, with the
staff member's % and _ matched as themselves, not as SQL wildcards."""

from __future__ import annotations

import re

import pytest

from app.extensions import db
from app.services import session_queries
from app.sessions import create_session
from tests.helpers.web import another_browser, log_in


@pytest.fixture
def staff_browser(app, make_account, make_user):
    staff = make_user(make_account("phoneco", "Phone Co"), "helpdesk@phoneco.example", "support")
    browser = another_browser(app)
    log_in(browser, staff)
    return browser


@pytest.fixture
def people(acme, make_user) -> dict[str, int]:
    """Session id per email, one session each."""
    emails = [
        "alice@acme.example",
        "malice@acme.example",
        "bob_smith@acme.example",
        "bobxsmith@acme.example",
        "100%real@acme.example",
        "1000real@acme.example",
    ]
    sessions = {}
    for email in emails:
        user = make_user(acme["account"], email, "agent")
        sessions[email] = create_session(user, app_name="desktop", ip=None, user_agent=None).session
    db.session.commit()
    return {email: session.id for email, session in sessions.items()}


def _shown(browser, email: str) -> tuple[set[int], str]:
    page = browser.get("/support/sessions", query_string={"email": email}).get_data(as_text=True)
    return {int(i) for i in re.findall(r'data-testid="session-row" data-session-id="(\d+)"', page)}, page


def test_part_of_an_address_matches_every_address_containing_it(staff_browser, people):
    shown, _ = _shown(staff_browser, "ALICE")
    assert shown == {people["alice@acme.example"], people["malice@acme.example"]}
    shown, _ = _shown(staff_browser, " Alice@ACME ")
    assert shown == {people["alice@acme.example"], people["malice@acme.example"]}
    shown, _ = _shown(staff_browser, "@acme.example")
    assert shown == set(people.values())  # not the staff member's own session, at phoneco


def test_underscore_and_percent_are_not_wildcards(staff_browser, people):
    shown, _ = _shown(staff_browser, "bob_smith")
    assert shown == {people["bob_smith@acme.example"]}  # not bobxsmith: _ is not "any character"
    shown, _ = _shown(staff_browser, "100%real")
    assert shown == {people["100%real@acme.example"]}  # not 1000real: % is not "anything"
    shown, _ = _shown(staff_browser, "%")
    assert shown == {people["100%real@acme.example"]}


def test_nobody_matches_says_so(staff_browser, people):
    shown, page = _shown(staff_browser, "zed")
    assert not shown and "No user&#39;s email contains “zed”." in page
    shown, page = _shown(staff_browser, "nobody@acme.example")
    assert not shown and "No user has the email nobody@acme.example." in page


def test_many_matching_users_are_read_through_a_subquery(staff_browser, people, monkeypatch):
    """Past EMAIL_USER_IDS_LIMIT users the filter is a subquery: the same sessions come back."""
    expected, _ = _shown(staff_browser, "@acme")
    monkeypatch.setattr(session_queries, "EMAIL_USER_IDS_LIMIT", 2)
    shown, _ = _shown(staff_browser, "@acme")
    assert shown == expected and len(shown) == len(people)
    shown, _ = _shown(staff_browser, "bob_")
    assert shown == {people["bob_smith@acme.example"]}
