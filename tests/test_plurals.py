"""Counts read as words, "1 session" and "2 sessions", never "session(s)": one helper
(``app.formatting.plural``) behind the flash messages, the pages and the commands."""

from __future__ import annotations

import re
from pathlib import Path

from flask import render_template_string

from app.formatting import plural, thousands
from tests.helpers.signin import sso_sign_in
from tests.helpers.web import another_browser, app_session, csrf_from

APP_DIR = Path(__file__).resolve().parent.parent / "app"


def test_plural_agrees_with_the_count_and_formats_it() -> None:
    assert plural(1, "session") == "1 session"
    assert plural(0, "session") == "0 sessions"
    assert plural(20_000, "user") == "20,000 users"
    assert plural(2, "entry", "entries") == "2 entries" and plural(1, "entry", "entries") == "1 entry"
    assert thousands(1234567) == "1,234,567"


def test_templates_get_the_same_helpers_as_filters(app) -> None:
    with app.test_request_context():
        assert render_template_string('{{ 1|plural("user") }}, {{ 20000|plural("row") }}') == "1 user, 20,000 rows"
        assert render_template_string("{{ 20000|thousands }}") == "20,000"


def test_no_text_in_the_app_says_s_in_brackets() -> None:
    """A scan of every module and template: "(s)" after a word is the sign of a count not put in words."""
    offenders = [
        f"{path.relative_to(APP_DIR)}:{number}: {line.strip()}"
        for path in sorted(APP_DIR.rglob("*"))
        if path.suffix in (".py", ".html", ".txt") and path.name != "formatting.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"(?<!\w)[a-z]+\(s\)", line.replace("http(s)", ""))
    ]
    assert offenders == []


def test_one_session_signed_out_is_singular(client, acme, sign_in) -> None:
    """Deactivating a user signed in once says "1 session", not "1 sessions" or "1 session(s)"."""
    app_session(acme["agent"], "desktop")
    assert sign_in(acme["connection"], "admin@acme.example").status_code == 302
    url = f"/admin/users/{acme['agent'].id}/deactivate"
    response = client.post(url, data={"csrf_token": csrf_from(client, url)})
    assert response.status_code == 302
    assert "Deactivated agent@acme.example; 1 session signed out everywhere." in client.get(response.location).get_data(
        as_text=True
    )


def test_support_revoking_one_session_is_singular(app, acme, make_account, make_user, make_connection, idp) -> None:
    staff_account = make_account("phoneco", "Phone Co (staff)")
    make_user(staff_account, "helpdesk@phoneco.example", "support")
    browse = another_browser(app)
    sso_sign_in(browse, idp, make_connection(staff_account), "helpdesk@phoneco.example")
    app_session(acme["agent"], "mobile")
    response = browse.post(
        f"/support/users/{acme['agent'].id}/revoke-sessions",
        data={"csrf_token": csrf_from(browse, "/support/sessions")},
    )
    assert "Revoked 1 session of agent@acme.example." in browse.get(response.location).get_data(as_text=True)


def test_users_list_total_agrees(client, acme, sign_in) -> None:
    assert sign_in(acme["connection"], "admin@acme.example").status_code == 302
    page = client.get("/admin/users", query_string={"q": "agent@"}).get_data(as_text=True)
    assert "1 user matches." in page
    assert "2 users." in client.get("/admin/users").get_data(as_text=True)


def test_commands_count_in_words(runner, acme) -> None:
    app_session(acme["agent"], "desktop")
    result = runner.invoke(args=["sessions", "revoke", "--user", "agent@acme.example"])
    assert result.exit_code == 0 and "Revoked 1 session." in result.output
    app_session(acme["agent"], "desktop")
    result = runner.invoke(args=["users", "deactivate", "agent@acme.example"])
    assert result.exit_code == 0 and "(1 session revoked)" in result.output, result.output
