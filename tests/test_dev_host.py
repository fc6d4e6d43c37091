"""Development: every request ends up on BASE_URL's host, so cookies and SAML URLs agree."""

from __future__ import annotations

from app import create_app
from config import DevelopmentConfig, TestingConfig


def _development_app():
    settings = type(
        "Dev",
        (DevelopmentConfig,),
        {"BASE_URL": "http://localhost:5000", "SQLALCHEMY_DATABASE_URI": "sqlite://", "DEMO_IDP": False},
    )
    return create_app(settings)


def test_another_host_is_sent_to_base_url_with_path_and_query():
    client = _development_app().test_client()
    response = client.get("/login?next=/portal/", base_url="http://127.0.0.1:5000")
    assert response.status_code == 308
    assert response.location == "http://localhost:5000/login?next=/portal/"


def test_a_form_posted_to_another_host_keeps_its_method():
    client = _development_app().test_client()
    response = client.post("/login/password", base_url="http://127.0.0.1:5000", data={"email": "a@b.example"})
    assert response.status_code == 308 and response.location == "http://localhost:5000/login/password"


def test_base_url_host_is_served():
    client = _development_app().test_client()
    assert client.get("/login", base_url="http://localhost:5000").status_code == 200


def test_no_redirect_outside_development():
    settings = type("Test", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    client = create_app(settings).test_client()
    assert client.get("/healthz-does-not-matter", base_url="http://127.0.0.1:5000").status_code == 404
