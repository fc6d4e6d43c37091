"""Issue 9, item 12: no oracle across accounts. Creating (admin page, command line) or importing
(CSV) a user whose email belongs to another account gets one neutral answer, ``EMAIL_UNAVAILABLE``
"this email cannot be used here", that says nothing about the other account. A duplicate within the
account may say so."""

from __future__ import annotations

import json

import pytest

from app.extensions import db
from app.models import User
from tests.helpers.web import csrf_from, log_in

NEUTRAL = "this email cannot be used here"


@pytest.fixture
def taken(make_account, make_user) -> User:
    return make_user(make_account("globex", "Globex Secret Corp"), "boss@globex.example", "admin")


def _unchanged(user: User) -> None:
    db.session.expire_all()
    assert db.session.get(User, user.id).account.slug == "globex"
    assert db.session.query(User).filter(User.email.like("%@globex.example")).count() == 1


def _reveals_nothing(text: str) -> None:
    for secret in ("globex secret corp", "another account", "already exists", "belongs to"):
        assert secret not in text.lower(), secret


def test_admin_page(client, acme, taken):
    log_in(client, acme["admin"])
    token = csrf_from(client, "/admin/users/new")
    other = client.post(
        "/admin/users/new", data={"csrf_token": token, "email": "Boss@Globex.example", "roles": ["agent"]}
    )
    page = other.get_data(as_text=True)
    assert other.status_code == 422 and "This email cannot be used here." in page
    _reveals_nothing(page)
    same = client.post(
        "/admin/users/new", data={"csrf_token": token, "email": "agent@acme.example", "roles": ["agent"]}
    )
    assert same.status_code == 422 and "Already a user of this account: agent@acme.example." in same.get_data(
        as_text=True
    )
    _unchanged(taken)


def test_command_line(runner, acme, taken):
    result = runner.invoke(
        args=["users", "create", "boss@globex.example", "--account", "acme", "--roles", "agent", "--json"]
    )
    assert result.exit_code != 0
    answer = json.loads(result.output.strip().splitlines()[-1])
    assert answer["error"] == "EMAIL_UNAVAILABLE" and NEUTRAL in answer["message"]
    _reveals_nothing(result.output)
    _unchanged(taken)


def test_csv_import(runner, acme, taken, tmp_path):
    path = tmp_path / "users.csv"
    path.write_text("email,name,roles\nnew@acme.example,New,agent\nBOSS@globex.example,Boss,admin\n")
    result = runner.invoke(args=["users", "import", str(path), "--account", "acme", "--json"])
    report = json.loads(result.output)
    assert result.exit_code == 1 and not report["applied"]
    assert report["issues"] == [
        {
            "line": 3,
            "code": "EMAIL_UNAVAILABLE",
            "message": f"Line 3: {NEUTRAL}. Use another address, or delete the line.",
            "email": "boss@globex.example",
        }
    ]
    _reveals_nothing(result.output)
    _unchanged(taken)
