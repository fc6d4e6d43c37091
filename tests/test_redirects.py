"""Where the browser goes after sign-in: a path on this site, or the default page."""

from __future__ import annotations

import pytest

from app.redirects import DEFAULT_NEXT, safe_next_path
from tests.helpers.signin import post_acs, start_sso


@pytest.mark.parametrize(
    "candidate",
    [
        "https://evil.example/",
        "http://evil.example",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/%5cevil.example",
        "/%2F%2Fevil.example",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,x",
        " /portal/",
        "/portal/\r\nSet-Cookie: x=1",
        "/\tevil",
        "portal/",
        "",
        None,
        "/" + "a" * 3000,
        "/%09/evil.example",
    ],
)
def test_unsafe_targets_fall_back_to_the_default(candidate):
    assert safe_next_path(candidate) == DEFAULT_NEXT


@pytest.mark.parametrize("candidate", ["/portal/", "/portal/?tab=users&page=2", "/admin/users#top", "/me/sessions"])
def test_relative_paths_on_this_site_are_kept(candidate):
    assert safe_next_path(candidate) == candidate


def test_open_redirect_through_sso_start_is_closed(client, acme, idp):
    request_id = start_sso(client, "admin@acme.example", next_path="//evil.example/steal")
    response = post_acs(
        client, acme["connection"], idp.response(acme["sp"], email="admin@acme.example", request_id=request_id)
    )
    assert response.location == "/portal/"


def test_relay_state_of_idp_initiated_sign_in_is_checked(client, make_account, make_connection, make_user, idp):
    from app.saml.urls import sp_values

    account = make_account()
    connection = make_connection(account, allow_idp_initiated=True)
    make_user(account, "admin@acme.example")
    saml = idp.response(sp_values(connection).as_dict(), email="admin@acme.example", request_id=None)
    response = post_acs(client, connection, saml, RelayState="https://evil.example/")
    assert response.status_code == 302 and response.location == "/portal/"
