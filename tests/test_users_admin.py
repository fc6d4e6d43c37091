"""The admin's users pages: list, search, filters, pages; create; edit; deactivate, reactivate and
delete with confirmation, each logging the user out everywhere at once; one account only."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import User, UserSession
from app.services.users import create_user, deactivate_user
from app.sessions import create_session
from tests.helpers.audit import audit_events
from tests.helpers.signin import sso_sign_in
from tests.helpers.web import another_browser, app_session, bearer, csrf_from


@pytest.fixture
def admin_client(client, acme, sign_in):
    """``client`` signed in as acme's admin, through the test IdP."""
    assert sign_in(acme["connection"], "admin@acme.example").status_code == 302
    return client


def _user(email: str) -> User | None:
    db.session.expire_all()
    return db.session.query(User).filter_by(email=email).one_or_none()


def _many_users(account, count: int) -> None:
    for number in range(count):
        create_user(
            account,
            f"user{number:03d}@acme.example",
            roles=["agent"] if number % 3 else ["admin", "agent"],
            name=f"Person {number:03d}",
        )
    db.session.commit()


def test_list_search_filter_and_pages(admin_client, acme, make_account, make_user):
    _many_users(acme["account"], 60)
    deactivate_user(_user("user007@acme.example"))
    db.session.commit()
    make_user(make_account("globex", "Globex"), "user999@globex.example", "admin")

    first = admin_client.get("/admin/users")
    page = first.get_data(as_text=True)
    assert first.status_code == 200
    assert page.count('data-testid="user-row"') == 50
    assert "62 users" in page  # 60 + acme's admin and agent; globex's user is not counted
    assert "globex" not in page
    assert 'data-testid="page-older"' in page

    second = admin_client.get("/admin/users", query_string={"after": "user047@acme.example"}).get_data(as_text=True)
    assert second.count('data-testid="user-row"') == 12
    assert "user048@acme.example" in second and "user047@acme.example" not in second
    back = admin_client.get("/admin/users", query_string={"before": "user048@acme.example"}).get_data(as_text=True)
    assert back.count('data-testid="user-row"') == 50 and "user047@acme.example" in back

    found = admin_client.get("/admin/users", query_string={"q": "PERSON 01"}).get_data(as_text=True)
    assert found.count('data-testid="user-row"') == 10  # names Person 010 .. 019
    by_email = admin_client.get("/admin/users", query_string={"q": "user05"}).get_data(as_text=True)
    assert by_email.count('data-testid="user-row"') == 10

    admins = admin_client.get("/admin/users", query_string={"role": "admin"}).get_data(as_text=True)
    assert admins.count('data-testid="user-row"') == 21  # every third user, plus acme's admin
    assert "agent@acme.example" not in admins
    deactivated = admin_client.get("/admin/users", query_string={"status": "deactivated"}).get_data(as_text=True)
    assert deactivated.count('data-testid="user-row"') == 1 and "user007@acme.example" in deactivated


def test_bad_filter_is_a_clear_message(admin_client):
    response = admin_client.get("/admin/users", query_string={"role": "support"})
    assert response.status_code == 400
    assert "FILTER_ROLE_INVALID" in response.get_data(as_text=True)


def test_admin_creates_a_user_and_it_is_audited(admin_client, acme):
    token = csrf_from(admin_client, "/admin/users/new")
    response = admin_client.post(
        "/admin/users/new",
        data={
            "csrf_token": token,
            "email": " New.Person@ACME.example ",
            "name": "New Person",
            "roles": ["agent"],
        },
    )
    assert response.status_code == 302
    user = _user("new.person@acme.example")
    assert user.account_id == acme["account"].id and user.role_list == ["agent"] and user.name == "New Person"
    event = audit_events("user.create")[-1]
    assert event.subject_email == "new.person@acme.example" and event.actor == "admin@acme.example"


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"email": "not an email", "roles": ["agent"]}, "is not a valid email address"),
        ({"email": "x@acme.example", "roles": []}, "Choose at least one role."),
        ({"email": "x@acme.example", "roles": ["support"]}, "is not a valid choice"),
        ({"email": "x@acme.example", "roles": ["agent"], "name": "bad\x00name"}, "control characters"),
        ({"email": "agent@acme.example", "roles": ["agent"]}, "Already a user of this account: agent@acme.example."),
    ],
)
def test_create_refuses_bad_input_and_saves_nothing(admin_client, form, message):
    before = db.session.query(User).count()
    response = admin_client.post(
        "/admin/users/new", data={"csrf_token": csrf_from(admin_client, "/admin/users/new"), **form}
    )
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.session.query(User).count() == before


def test_create_refuses_an_email_of_another_account(admin_client, make_account, make_user):
    make_user(make_account("globex", "Globex"), "taken@globex.example", "agent")
    response = admin_client.post(
        "/admin/users/new",
        data={
            "csrf_token": csrf_from(admin_client, "/admin/users/new"),
            "email": "TAKEN@globex.example",
            "roles": ["agent"],
        },
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "This email cannot be used here." in page and "another account" not in page
    assert _user("taken@globex.example").account.slug == "globex"


def test_edit_name_and_roles_is_audited_and_keeps_staff_roles(admin_client, acme, make_user):
    helper = make_user(acme["account"], "helper@acme.example", "agent,support")
    token = csrf_from(admin_client, f"/admin/users/{helper.id}")
    response = admin_client.post(
        f"/admin/users/{helper.id}", data={"csrf_token": token, "name": "Helpful", "roles": ["admin", "agent"]}
    )
    assert response.status_code == 302
    helper = _user("helper@acme.example")
    assert helper.name == "Helpful" and helper.role_list == ["admin", "agent", "support"]
    event = audit_events("user.update")[-1]
    assert event.details["before"] == {"name": "", "roles": ["agent", "support"]}
    assert event.details["after"]["roles"] == ["admin", "agent", "support"]

    again = admin_client.post(
        f"/admin/users/{helper.id}", data={"csrf_token": token, "name": "Helpful", "roles": ["admin", "agent"]}
    )
    assert again.status_code == 302
    assert len(audit_events("user.update")) == 1  # nothing changed, nothing audited


def test_admin_cannot_lock_themselves_out(admin_client, acme):
    admin = acme["admin"]
    token = csrf_from(admin_client, f"/admin/users/{admin.id}")
    response = admin_client.post(f"/admin/users/{admin.id}", data={"csrf_token": token, "roles": ["agent"]})
    assert response.status_code == 422
    assert "cannot take the admin role from yourself" in response.get_data(as_text=True)
    for action in ("deactivate", "delete"):
        response = admin_client.post(f"/admin/users/{admin.id}/{action}", data={"csrf_token": token, "confirm": "y"})
        assert response.status_code == 302
        assert "cannot" in admin_client.get(response.location).get_data(as_text=True)
    assert _user("admin@acme.example").status == "active" and _user("admin@acme.example").role_list == ["admin"]


def test_deactivate_asks_first_then_logs_the_user_out_everywhere(app, admin_client, acme, idp):
    """The deactivated admin's browser and the agent's desktop app are both refused at once."""
    colleague = create_user(acme["account"], "colleague@acme.example", roles=["admin", "agent"])
    db.session.commit()
    their_browser = another_browser(app)
    sso_sign_in(their_browser, idp, acme["connection"], "colleague@acme.example")
    desktop = app_session(colleague, "desktop")
    assert their_browser.get("/portal/").status_code == 200
    assert their_browser.get("/api/v1/me", headers=bearer(desktop.token)).status_code == 200

    confirm = admin_client.get(f"/admin/users/{colleague.id}/deactivate")
    page = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and 'data-testid="confirm-deactivate"' in page
    assert "2 open sessions" in page
    assert _user("colleague@acme.example").status == "active"  # looking at the page changes nothing

    response = admin_client.post(
        f"/admin/users/{colleague.id}/deactivate",
        data={"csrf_token": csrf_from(admin_client, f"/admin/users/{colleague.id}/deactivate")},
    )
    assert response.status_code == 302
    assert "2 sessions signed out everywhere" in admin_client.get(response.location).get_data(as_text=True)

    refused = their_browser.get("/portal/")
    assert refused.status_code == 302 and refused.location.startswith("/login")
    assert their_browser.get("/api/v1/me", headers=bearer(desktop.token)).status_code == 401
    assert _user("colleague@acme.example").status == "deactivated"
    assert {s.revoked_reason for s in db.session.query(UserSession).filter_by(user_id=colleague.id)} == {
        "user_deactivated"
    }
    event = audit_events("user.deactivate")[-1]
    assert event.details == {"sessions_revoked": 2} and event.actor == "admin@acme.example"


def test_reactivate(admin_client, acme):
    agent = acme["agent"]
    deactivate_user(agent)
    db.session.commit()
    token = csrf_from(admin_client, f"/admin/users/{agent.id}")
    assert admin_client.post(f"/admin/users/{agent.id}/reactivate", data={"csrf_token": token}).status_code == 302
    assert _user("agent@acme.example").status == "active"
    assert audit_events("user.reactivate")[-1].actor == "admin@acme.example"


def test_delete_needs_the_tick_box_then_deletes_and_revokes(app, admin_client, acme):
    agent = acme["agent"]
    mobile = app_session(agent, "mobile")
    token = csrf_from(admin_client, f"/admin/users/{agent.id}/delete")
    unticked = admin_client.post(f"/admin/users/{agent.id}/delete", data={"csrf_token": token})
    assert unticked.status_code == 422 and "Tick the box to confirm." in unticked.get_data(as_text=True)
    assert _user("agent@acme.example") is not None

    response = admin_client.post(f"/admin/users/{agent.id}/delete", data={"csrf_token": token, "confirm": "y"})
    assert response.status_code == 302 and response.location == "/admin/users"
    assert _user("agent@acme.example") is None
    assert another_browser(app).get("/api/v1/me", headers=bearer(mobile.token)).status_code == 401
    session = db.session.get(UserSession, mobile.session.id)
    assert session.user_id is None and session.revoked_reason == "user_deleted"
    assert audit_events("user.delete")[-1].details == {"sessions_revoked": 1}


def test_another_accounts_user_is_404_everywhere(admin_client, make_account, make_user):
    stranger = make_user(make_account("globex", "Globex"), "boss@globex.example", "admin")
    create_session(stranger, app_name="portal", ip=None, user_agent=None)
    db.session.commit()
    token = csrf_from(admin_client, "/admin/users/new")
    assert admin_client.get(f"/admin/users/{stranger.id}").status_code == 404
    assert admin_client.get(f"/admin/users/{stranger.id}/deactivate").status_code == 404
    for path, data in (
        (f"/admin/users/{stranger.id}", {"name": "Pwned", "roles": ["agent"]}),
        (f"/admin/users/{stranger.id}/deactivate", {}),
        (f"/admin/users/{stranger.id}/reactivate", {}),
        (f"/admin/users/{stranger.id}/delete", {"confirm": "y"}),
    ):
        assert admin_client.post(path, data={"csrf_token": token, **data}).status_code == 404
    stranger = _user("boss@globex.example")
    assert stranger.status == "active" and stranger.name == "" and stranger.role_list == ["admin"]
    assert db.session.query(UserSession).filter_by(user_id=stranger.id, revoked_at=None).count() == 1


def test_posts_without_csrf_token_change_nothing(admin_client, acme):
    agent = acme["agent"]
    response = admin_client.post(f"/admin/users/{agent.id}/deactivate")
    assert response.status_code == 400 and "CSRF_FAILED" in response.get_data(as_text=True)
    assert _user("agent@acme.example").status == "active"


def test_only_admins_get_in(app, client, acme, make_account, make_user, make_connection, idp):
    assert client.get("/admin/users").status_code == 302  # not signed in: to the sign-in page
    staff_account = make_account("staff", "Phone Co staff")
    make_user(staff_account, "helpdesk@staff.example", "support")
    staff_browser = another_browser(app)
    sso_sign_in(staff_browser, idp, make_connection(staff_account), "helpdesk@staff.example")
    assert staff_browser.get("/admin/users").status_code == 403
    assert staff_browser.get("/admin/import").status_code == 403
    desktop = app_session(acme["agent"], "desktop")
    # An app's bearer token opens no page: as if there were no session at all (sign-in page).
    assert client.get("/admin/users", headers=bearer(desktop.token)).status_code == 302
