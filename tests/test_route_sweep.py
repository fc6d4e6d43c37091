"""An attacker's sweep: every route, every method, with hostile path values and form bodies,
anonymous and as a staff admin. Whatever is refused is refused with a 4xx (or a 503), never a 500."""

from __future__ import annotations

import re

import pytest

from tests.helpers.web import another_browser, app_session, bearer, log_in

HOSTILE_VALUES = ("99999999999999999999", "0", "-1", "%00", "%C0%AF", "a" * 300, "..%2f..", "1")
BODIES = ({}, {"SAMLResponse": "PHg+PC94Pg==", "email": "\u00e9\x00@x", "csrf_token": "x", "next": "//evil.example"})


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "staff-admin"])
def test_no_route_answers_500(app, acme, make_user, monkeypatch, signed_in):
    # With CSRF checks on, every POST would stop at them; off, the bodies reach the views.
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", False)
    monkeypatch.setitem(app.config, "ANONYMOUS_REQUESTS_PER_MINUTE", 10**9)
    browser = another_browser(app)
    headers: dict[str, str] = {}
    if signed_in:
        staff = make_user(acme["account"], "sweep@phoneco.example", "admin,support")
        log_in(browser, staff)
        headers = bearer(app_session(staff).token)
    failures = []
    sent = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for value in HOSTILE_VALUES:
            path = re.sub(r"<[^>]+>", value, rule.rule)
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                for body in BODIES:
                    response = browser.open(path, method=method, data=body, headers=headers)
                    sent += 1
                    if response.status_code >= 500 and response.status_code != 503:
                        failures.append((method, path, response.status_code))
    assert sent > 1000  # every route was reached, not a handful
    assert failures == []
