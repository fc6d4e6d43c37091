"""CSV imports as jobs: the previewed upload kept in the database for a one-button apply, once;
expiry; another admin's or account's import refused; cancel before the write; the progress
endpoint; a 20,000-row file checked and written by a worker thread; a worker that died; the
template CSV."""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import update
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from app.extensions import db
from app.models import ImportJob, User
from app.services import import_jobs
from app.timeutil import utcnow
from tests.helpers.audit import audit_events
from tests.helpers.imports import wait_for_job
from tests.helpers.web import another_browser, csrf_from, log_in

GOOD = "email,name,roles\nana@acme.example,Ana Lima,admin;agent\nben@acme.example,Ben,agent\n"


def _big(rows: int) -> str:
    return "email,name,roles\n" + "".join(f"person{n:05d}@acme.example,Person {n},agent\n" for n in range(rows))


@pytest.fixture(autouse=True)
def _no_job_outlives_its_test() -> Iterator[None]:
    """Every import thread a test started has finished before its tables are emptied."""
    yield
    for thread in threading.enumerate():
        if thread.name.startswith("import-job-"):
            thread.join(timeout=120)
            assert not thread.is_alive(), f"{thread.name} still running"


@pytest.fixture
def admin_client(app, acme):
    browser = another_browser(app)
    log_in(browser, acme["admin"])
    return browser


def _post(client, content: str, **fields: str):
    data = {"csrf_token": csrf_from(client, "/admin/import"), **fields}
    data["file"] = FileStorage(io.BytesIO(content.encode()), filename="people.csv", content_type="text/csv")
    boundary, body = encode_multipart(data)
    return client.post("/admin/import", data=body, content_type=f"multipart/form-data; boundary={boundary}")


def _upload(client, content: str, **fields: str) -> str:
    """Upload once; the job's page path (its check may still be running)."""
    response = _post(client, content, **fields)
    assert response.status_code == 303
    return response.headers["Location"]


def _job(path: str) -> ImportJob:
    db.session.expire_all()
    return db.session.get(ImportJob, int(path.rsplit("/", 1)[1]))


def _apply(client, path: str, sha256: str | None = None):
    return client.post(
        f"{path}/apply", data={"csrf_token": csrf_from(client, path), "sha256": sha256 or _job(path).sha256}
    )


def _cancel(client, path: str):
    return client.post(f"{path}/cancel", data={"csrf_token": csrf_from(client, "/admin/import")})


def _emails() -> set[str]:
    db.session.expire_all()
    return {email for (email,) in db.session.query(User.email)}


def _set(path: str, **values: object) -> None:
    db.session.execute(update(ImportJob).where(ImportJob.id == _job(path).id).values(**values))
    db.session.commit()


def _text(html: str) -> str:
    return " ".join(html.split())


def test_a_20000_row_file_runs_as_a_job_and_reaches_done_with_every_row(admin_client, acme):
    path = _upload(admin_client, _big(20_000))
    first = admin_client.get(path).get_data(as_text=True)
    # Larger than IMPORT_INLINE_MAX_ROWS: the request only stored it; a worker thread checks it.
    assert _job(path).rows_total == 20_000
    ready = wait_for_job(admin_client, path, "ready", "failed")
    assert ready["state"] == "ready", ready
    assert (ready["rows_checked"], ready["rows_total"], ready["percent"]) == (20_000, 20_000, 100)
    assert ready["text"] == "Checked 20,000 rows: ready to apply"
    page = _text(admin_client.get(path).get_data(as_text=True))
    assert 'data-testid="apply">Apply these 20,000 changes<' in page
    assert 'data-testid="count-create">20,000<' in page and "New users (20,000, first 500 shown)" in page
    assert "<title>Import users · Preview · Phone Portal</title>" in page and page.count("<h1") == 1
    if 'data-state="checking"' in first:  # (the usual case: the check takes longer than a redirect)
        assert 'data-testid="import-progress"' in first and "import_progress.js" in first
        assert "<title>Import users · Checking · Phone Portal</title>" in first

    assert _apply(admin_client, path).status_code == 303
    seen: list[dict] = []
    done = wait_for_job(admin_client, path, "done", "failed", seen=seen)
    if db.engine.dialect.name == "postgresql":
        # Rows written are reported while the import's one transaction is still open.
        assert any(0 < status["rows_written"] < 20_000 for status in seen), seen
    assert done == {
        **done,
        "state": "done",
        "rows_written": 20_000,
        "percent": 100,
        "text": "Done: 20,000 rows applied",
        "finished": True,
    }
    assert len(_emails()) == 20_002
    assert db.session.query(User).filter(User.email.like("person%")).filter_by(
        account_id=acme["account"].id
    ).count() == (20_000)
    page = _text(admin_client.get(path).get_data(as_text=True))
    assert "20,000 rows applied: 20,000 users created, 0 users updated." in page
    assert 'data-testid="import-progress"' not in page and "import_progress.js" not in page
    assert _job(path).content is None  # the upload is dropped once applied
    (summary,) = audit_events("user.import")
    assert summary.details["created"] == 20_000 and summary.actor == "admin@acme.example"


def test_apply_is_one_button_and_applies_exactly_once(admin_client):
    path = _upload(admin_client, GOOD)
    page = admin_client.get(path).get_data(as_text=True)
    assert 'data-testid="apply">Apply these 2 changes<' in page and 'type="file"' not in page
    assert _apply(admin_client, path).status_code == 303
    assert {"ana@acme.example", "ben@acme.example"} <= _emails()

    again = _apply(admin_client, path)
    assert again.status_code == 409
    assert "IMPORT_ALREADY_APPLIED" in again.get_data(as_text=True)
    assert len(audit_events("user.import")) == 1  # written once
    applies = audit_events("user.import.apply")
    assert [(event.outcome, event.error_code) for event in applies] == [
        ("success", None),
        ("failure", "IMPORT_ALREADY_APPLIED"),
    ]
    assert applies[0].actor == "admin@acme.example" and applies[0].details["created"] == 2
    assert applies[0].details["sha256"] == _job(path).sha256


def test_an_apply_needs_a_csrf_token(admin_client):
    path = _upload(admin_client, GOOD)
    response = admin_client.post(f"{path}/apply", data={"sha256": _job(path).sha256})
    assert response.status_code == 400
    assert "ana@acme.example" not in _emails() and _job(path).state == "ready"


def test_the_same_file_uploaded_again_gives_the_same_preview(admin_client):
    path = _upload(admin_client, GOOD)
    assert _upload(admin_client, GOOD) == path
    assert _upload(admin_client, GOOD, deactivate_missing="y") != path  # another option, another preview
    assert db.session.query(ImportJob).count() == 2


def test_an_expired_preview_is_refused_and_writes_nothing(admin_client):
    path = _upload(admin_client, GOOD)
    _set(path, expires_at=utcnow() - dt.timedelta(seconds=1))
    response = _apply(admin_client, path)
    html = _text(response.get_data(as_text=True))
    assert response.status_code == 410
    assert "This preview expired: previews are kept for 60 minutes. Nothing was changed." in html
    assert "ana@acme.example" not in _emails()
    job = _job(path)
    assert (job.state, job.error_code, job.content) == ("failed", "IMPORT_EXPIRED", None)
    assert audit_events("user.import.apply")[-1].error_code == "IMPORT_EXPIRED"


def test_another_admin_of_the_account_cannot_open_apply_or_cancel_it(app, admin_client, acme, make_user):
    path = _upload(admin_client, GOOD)
    other = another_browser(app)
    log_in(other, make_user(acme["account"], "second-admin@acme.example", "admin"))
    for response in (other.get(path), _apply(other, path), _cancel(other, path)):
        html = response.get_data(as_text=True)
        assert response.status_code == 403
        assert "IMPORT_NOT_YOURS" in html and "Another admin of your account uploaded this file" in html
    status = other.get(f"{path}/status")
    assert status.status_code == 403 and status.get_json()["error"] == "IMPORT_NOT_YOURS"
    assert "ana@acme.example" not in _emails() and _job(path).state == "ready"
    assert [event.error_code for event in audit_events("user.import.apply")] == ["IMPORT_NOT_YOURS"]
    assert [event.error_code for event in audit_events("user.import.cancel")] == ["IMPORT_NOT_YOURS"]


def test_an_admin_of_another_account_gets_404_everywhere(app, admin_client, make_account, make_user):
    path = _upload(admin_client, GOOD)
    stranger = another_browser(app)
    log_in(stranger, make_user(make_account("globex", "Globex"), "boss@globex.example", "admin"))
    for response in (
        stranger.get(path),
        stranger.get(f"{path}/status"),
        _apply(stranger, path),
        _cancel(stranger, path),
    ):
        assert response.status_code == 404
        assert "people.csv" not in response.get_data(as_text=True)
    assert "ana@acme.example" not in _emails() and _job(path).state == "ready"
    assert "people.csv" not in stranger.get("/admin/import").get_data(as_text=True)


def test_cancel_a_preview_before_the_write(admin_client):
    path = _upload(admin_client, GOOD)
    response = admin_client.post(f"{path}/cancel", data={"csrf_token": csrf_from(admin_client, path)})
    assert response.status_code == 303
    page = admin_client.get(path).get_data(as_text=True)
    assert 'data-state="cancelled"' in page and "Import cancelled: nothing was changed." in page
    assert "<title>Import users · Cancelled · Phone Portal</title>" in page
    job = _job(path)
    assert (job.state, job.content) == ("cancelled", None)
    (event,) = audit_events("user.import.cancel")
    assert event.outcome == "success" and event.actor == "admin@acme.example"
    assert event.details["job"] == job.id and event.details["filename"] == "people.csv"

    refused = _apply(admin_client, path)
    assert refused.status_code == 409 and "IMPORT_CANCELLED" in refused.get_data(as_text=True)
    assert "ana@acme.example" not in _emails()


def test_cancel_while_checking_stops_the_check(app, admin_client, acme):
    """A job cancelled during its check stays cancelled: the thread stops at its next progress
    write (or, if it had finished, its result is not kept)."""
    path = _upload(admin_client, _big(20_000))
    response = _cancel(admin_client, path)
    assert response.status_code in (303, 409)
    for thread in threading.enumerate():
        if thread.name.startswith("import-job-"):
            thread.join(timeout=120)
    job = _job(path)
    if response.status_code == 303:
        assert (job.state, job.content) == ("cancelled", None)
        assert job.rows_checked < 20_000 or job.report is None  # never became a preview
    assert not _emails() & {"person00000@acme.example"}


def test_a_checking_job_cancelled_before_its_thread_runs_is_left_alone(admin_client, acme):
    with admin_client.application.test_request_context():
        job, created = import_jobs.store_upload(
            acme["account"], acme["admin"], io.BytesIO(GOOD.encode()), filename="x.csv", deactivate_missing=False
        )
    db.session.commit()
    assert created and job.state == "checking"
    path = f"/admin/import/{job.id}"
    assert _cancel(admin_client, path).status_code == 303
    import_jobs.run(job.id, import_jobs.run_check)  # the thread, starting late
    assert _job(path).state == "cancelled" and _job(path).report is None
    cannot = _cancel(admin_client, path)
    assert cannot.status_code == 409 and "IMPORT_CANNOT_CANCEL" in cannot.get_data(as_text=True)


def test_the_progress_endpoint_reports_the_job_row(admin_client):
    path = _upload(admin_client, GOOD)
    _set(path, state="checking", rows_checked=5_000, rows_total=20_000, heartbeat_at=utcnow())
    status = admin_client.get(f"{path}/status").get_json()
    assert status == {
        "id": _job(path).id,
        "state": "checking",
        "rows_total": 20_000,
        "rows_checked": 5_000,
        "rows_written": 0,
        "percent": 25,
        "error_code": None,
        "text": "Checked 5,000 of 20,000 rows",
        "message": None,
        "finished": False,
        "running": True,
    }
    page = admin_client.get(path).get_data(as_text=True)
    assert 'value="5000" max="20000"' in page and "Checked 5,000 of 20,000 rows" in page
    assert 'data-testid="reload"' in page  # inside <noscript>: without JavaScript, a reload link

    _set(path, state="writing", rows_checked=20_000, rows_written=15_000)
    status = admin_client.get(f"{path}/status").get_json()
    assert (status["state"], status["percent"], status["text"]) == (
        "writing",
        75,
        "Applied 15,000 of 20,000 rows",
    )


def test_a_job_whose_worker_died_is_shown_as_failed_with_try_again(app, admin_client):
    path = _upload(admin_client, GOOD)
    silent = app.config["IMPORT_JOB_HEARTBEAT_SECONDS"] + 1
    _set(path, state="writing", heartbeat_at=utcnow() - dt.timedelta(seconds=silent))
    status = admin_client.get(f"{path}/status").get_json()
    assert (status["state"], status["error_code"], status["finished"]) == ("failed", "IMPORT_WORKER_LOST", True)
    assert "Nothing was changed. Try again" in status["message"]
    page = _text(admin_client.get(path).get_data(as_text=True))
    assert "the server handling it restarted. Nothing was changed. Try again" in page
    assert 'data-testid="import-again">Choose the file again<' in page
    assert _job(path).content is None and "ana@acme.example" not in _emails()


def test_a_preview_made_stale_by_another_change_is_not_applied(admin_client, acme, make_user):
    path = _upload(admin_client, GOOD)
    make_user(acme["account"], "ana@acme.example", "agent", name="Ana")  # meanwhile, on another page
    _apply(admin_client, path)
    page = _text(admin_client.get(path).get_data(as_text=True))
    assert "IMPORT_STALE" in page and "The users of your account changed since the preview" in page
    assert "create 1 (not 2), update 1 (not 0)" in page
    assert "ben@acme.example" not in _emails()
    assert audit_events("user.import")[-1].error_code == "IMPORT_STALE"


def test_the_template_csv_downloads_and_imports(admin_client):
    response = admin_client.get("/admin/import/template.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="users-template.csv"'
    body = response.get_data(as_text=True)
    assert body.splitlines() == ["email,name,roles", "ana@example.com,Ana Lima,admin;agent"]
    assert 'href="/admin/import/template.csv"' in admin_client.get("/admin/import").get_data(as_text=True)
    path = _upload(admin_client, body)
    assert _job(path).state == "ready" and 'data-testid="apply">Apply this 1 change<' in admin_client.get(
        path
    ).get_data(as_text=True)


def test_the_import_page_lists_the_admins_recent_imports(admin_client):
    path = _upload(admin_client, GOOD)
    page = admin_client.get("/admin/import").get_data(as_text=True)
    assert f'href="{path}">people.csv</a>' in page and 'data-state="ready"' in page
    assert '<table class="stack"' in page and 'data-label="File"' in page


def test_the_next_upload_drops_expired_and_abandoned_uploads(app, admin_client):
    expired = _upload(admin_client, GOOD)
    _set(expired, expires_at=utcnow() - dt.timedelta(seconds=1))
    abandoned = _upload(admin_client, GOOD + "cy@acme.example,Cy,agent\n")
    silent = app.config["IMPORT_JOB_HEARTBEAT_SECONDS"] + 1
    _set(abandoned, state="checking", heartbeat_at=utcnow() - dt.timedelta(seconds=silent))
    _upload(admin_client, "email,name,roles\ndee@acme.example,Dee,agent\n")
    assert (_job(expired).state, _job(expired).error_code, _job(expired).content) == ("failed", "IMPORT_EXPIRED", None)
    assert (_job(abandoned).error_code, _job(abandoned).content) == ("IMPORT_WORKER_LOST", None)
