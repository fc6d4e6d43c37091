"""Request size per route (issue 9, item 13): a small global body limit, the CSV import alone
gets its large one, the ACS keeps its 256 KB; over the limit is a 413 with our page and code
never a 500."""

from __future__ import annotations

import io

from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from tests.helpers.imports import wait_for_job
from tests.helpers.web import another_browser, csrf_from, log_in

MB = 1024 * 1024


def test_the_global_limit_is_small(app):
    assert app.config["MAX_CONTENT_LENGTH"] == MB
    assert app.config["IMPORT_MAX_BYTES"] > 10 * MB
    assert app.config["SAML_ACS_MAX_BYTES"] == 256 * 1024


def test_a_large_form_anywhere_else_is_a_413_page(client, acme):
    csrf = csrf_from(client)
    response = client.post(
        "/login/password", data={"email": "admin@acme.example", "password": "x" * (2 * MB), "csrf_token": csrf}
    )
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "REQUEST_TOO_LARGE" in page and "1,024 KB" in page


def test_the_csv_import_takes_more_than_the_global_limit(app, acme):
    admin_browser = another_browser(app)
    log_in(admin_browser, acme["admin"])
    csrf = csrf_from(admin_browser, "/admin/import")
    rows = "".join(f"user{number:07d}@acme.example,User {number},agent\n" for number in range(45_000))
    body = ("email,name,roles\n" + rows).encode()
    assert MB < len(body) < app.config["IMPORT_MAX_BYTES"]
    # Built in memory: the test client would spool a large body to a file it never closes.
    file = FileStorage(io.BytesIO(body), filename="users.csv", content_type="text/csv")
    boundary, encoded = encode_multipart({"csrf_token": csrf, "file": file})
    response = admin_browser.post(
        "/admin/import", data=encoded, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    # Checked by a worker thread (a large file): it ends before the test does.
    assert wait_for_job(admin_browser, response.headers["Location"], "ready")["rows_checked"] == 45_000


def test_the_acs_keeps_its_own_smaller_limit(client, acme):
    response = client.post(f"/saml/{acme['connection'].id}/acs", data={"SAMLResponse": "A" * (300 * 1024)})
    assert response.status_code == 413 and "SAML_TOO_LARGE" in response.get_data(as_text=True)
