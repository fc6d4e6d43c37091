"""Create the demo account, its users and its connection to the demo IdP (development only)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import Account, IdpCertificate, IdpConnection
from app.models.idp_connection import ENABLED
from app.saml import certificate_info, generate_key_pair
from app.services.users import create_user, deactivate_user, find_user_by_email

DEMO_ACCOUNT = "demo"


@dataclass(frozen=True)
class DemoPerson:
    """Someone the demo IdP can sign in; ``roles`` None means: not a user of the product."""

    email: str
    name: str
    roles: tuple[str, ...] | None
    active: bool = True
    #: What the demo page says will happen, so a newcomer sees each rule at work.
    expect: str = ""


DEMO_PEOPLE = (
    DemoPerson("alice@demo.example", "Alice Admin", ("admin",), expect="signs in to the Account Portal"),
    DemoPerson(
        "bob@demo.example", "Bob Agent", ("agent",), expect="refused: agents have no portal access (NO_ROLE_FOR_APP)"
    ),
    DemoPerson(
        "carol@demo.example", "Carol Former", ("admin",), active=False, expect="refused: deactivated (USER_DEACTIVATED)"
    ),
    DemoPerson(
        "dave@demo.example", "Dave Stranger", None, expect="refused: not a user of the product (USER_NOT_FOUND)"
    ),
)


def demo_idp_dir() -> Path:
    return Path(current_app.instance_path) / "demo_idp"


def demo_idp_entity_id() -> str:
    return f"{current_app.config['BASE_URL']}/demo-idp"


def demo_idp_key_pair() -> tuple[str, str]:
    """The demo IdP's signing key and certificate, created on first use under ``instance/``."""
    folder = demo_idp_dir()
    key_file, cert_file = folder / "key.pem", folder / "cert.pem"
    if not key_file.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_pem, cert_pem = generate_key_pair("Demo IdP")
        # Created 0600 (never readable by others, not even between write and chmod).
        with os.fdopen(os.open(key_file, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600), "w") as stream:
            stream.write(key_pem)
        cert_file.write_text(cert_pem)
    return key_file.read_text(), cert_file.read_text()


def ensure_demo() -> IdpConnection:
    """Create (once) the demo account, users and enabled connection; return the connection."""
    _key, cert_pem = demo_idp_key_pair()
    account = db.session.scalar(select(Account).where(Account.slug == DEMO_ACCOUNT))
    if account is None:
        account = Account(slug=DEMO_ACCOUNT, name="Demo Company", sso_required=False)
        db.session.add(account)
        db.session.flush()
    for person in DEMO_PEOPLE:
        if person.roles is None or find_user_by_email(person.email):
            continue
        user = create_user(account, person.email, roles=list(person.roles), name=person.name, actor="demo-setup")
        if not person.active:
            deactivate_user(user, actor="demo-setup")
    connection = db.session.scalar(
        select(IdpConnection).where(IdpConnection.account_id == account.id, IdpConnection.plugin_key == "generic")
    )
    if connection is None:
        sp_key, sp_cert = generate_key_pair(f"{current_app.config['BASE_URL']} SP")
        connection = IdpConnection(
            account_id=account.id,
            plugin_key="generic",
            name="Demo IdP",
            idp_entity_id=demo_idp_entity_id(),
            idp_sso_url=f"{current_app.config['BASE_URL']}/demo-idp/sso",
            idp_slo_url=f"{current_app.config['BASE_URL']}/demo-idp/slo",
            sp_certificate=sp_cert,
            status=ENABLED,
            # Single Logout on, to show it both ways with the demo IdP.
            settings={"single_logout": True},
        )
        connection.set_sp_private_key(sp_key)
        db.session.add(connection)
        db.session.flush()
    info = certificate_info(cert_pem)
    if not any(cert.fingerprint_sha256 == info.fingerprint_sha256 for cert in connection.certificates):
        connection.certificates.append(
            IdpCertificate(pem=info.pem, fingerprint_sha256=info.fingerprint_sha256, not_after=info.not_after)
        )
    return connection
